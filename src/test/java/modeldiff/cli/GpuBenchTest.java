package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench gpu's host side: its options and the ratios it writes beside both sides' figures. */
class GpuBenchTest {
    private final ObjectMapper om = new ObjectMapper();

    @Test
    void dtypes() {
        assertEquals(List.of(Precision.BF16, Precision.FP16), GpuBench.parseDtypes("bf16, fp16"));
        assertEquals(List.of(Precision.FP16), GpuBench.parseDtypes("fp16,fp16"));
        BadInputException e = assertThrows(BadInputException.class, () -> GpuBench.parseDtypes("bf16,fp8"));
        assertTrue(e.getMessage().contains("'fp8'"), e.getMessage());
    }

    /** Ratios from made-up figures, each checked by hand: 90/100, 99/90, the best kernel per shape over torch's. */
    @Test
    void ratiosFromBothSides() throws Exception {
        JsonNode m = om.readTree("""
                {"forward_ms_no_copies": 90, "forward_ms_best": 99, "fp16_forward_ms_no_copies": 80, "fp16_forward_ms_best": 100,
                 "gemm_wgmma_2048x1024x4096_tflops": 300, "gemm_wgmma_2048x1024x4096_splitk2_tflops": 450,
                 "gemm_mma_2048x1024x4096_tflops": 200, "gemm_wgmma_fp16_4096x4096x4096_tflops": 600,
                 "gemm_wmma_4096x4096x4096_tflops": 100}""");
        JsonNode h = om.readTree("""
                {"hf_sdpa_forward_nohooks_ms_best": 100, "hf_sdpa_forward_ms_best": 1500, "hf_fp16_sdpa_forward_nohooks_ms_best": 64,
                 "torch_matmul_bf16_2048x1024x4096_tflops": 500, "torch_matmul_fp16_4096x4096x4096_tflops": 750}""");
        ObjectNode r = GpuBench.ratios(om, m, h);
        assertEquals(0.9, r.get("bf16_forward_over_hf_sdpa").asDouble(), 1e-12);
        assertEquals(1.1, r.get("bf16_forward_with_probes_over_forward").asDouble(), 1e-12);
        assertEquals(0.066, r.get("bf16_forward_with_probes_over_hf_hooks").asDouble(), 1e-12);
        assertEquals(1.25, r.get("fp16_forward_over_hf_sdpa").asDouble(), 1e-12);
        assertEquals(1.25, r.get("fp16_forward_with_probes_over_forward").asDouble(), 1e-12);
        assertEquals(0.9, r.get("gemm_bf16_2048x1024x4096_over_torch").asDouble(), 1e-12);    // split-K's 450 / 500
        assertEquals(0.8, r.get("gemm_fp16_4096x4096x4096_over_torch").asDouble(), 1e-12);
        assertFalse(r.has("gemm_bf16_4096x4096x4096_over_torch"));                          // no torch figure for it
    }

    /** gemm_wgmma_ws's timings count among ours: the best kernel per shape, whichever it is (issue #18). */
    @Test
    void wsCountsAsOurs() throws Exception {
        JsonNode m = om.readTree("""
                {"gemm_wgmma_2048x4096x4096_tflops": 400, "gemm_wgmma_ws_2048x4096x4096_tflops": 600,
                 "gemm_wgmma_ws_fp16_4096x4096x4096_tflops": 700, "gemm_wgmma_fp16_4096x4096x4096_tflops": 500}""");
        JsonNode h = om.readTree("""
                {"torch_matmul_bf16_2048x4096x4096_tflops": 750, "torch_matmul_fp16_4096x4096x4096_tflops": 875}""");
        ObjectNode r = GpuBench.ratios(om, m, h);
        assertEquals(0.8, r.get("gemm_bf16_2048x4096x4096_over_torch").asDouble(), 1e-12);   // 600 / 750
        assertEquals(0.8, r.get("gemm_fp16_4096x4096x4096_over_torch").asDouble(), 1e-12);   // 700 / 875
    }

    /** Without HF's side only our own ratios are written. */
    @Test
    void ratiosWithoutHf() throws Exception {
        ObjectNode r = GpuBench.ratios(om, om.readTree("{\"forward_ms_no_copies\": 50, \"forward_ms_best\": 60}"), null);
        assertEquals(1.2, r.get("bf16_forward_with_probes_over_forward").asDouble(), 1e-12);
        assertEquals(1, r.size());
    }
}
