package modeldiff.forward.cuda;

import modeldiff.forward.cuda.DeviceKernels.GemmVariant;
import modeldiff.forward.cuda.DeviceKernels.TcGemm;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which tensor-core GEMM a launch gets, host side (issue #18): -Dmodeldiff.cuda.gemm parsed (wgmma_ws opt-in, the auto
 * fallback where the sm_90a module is missing, a bad value refused by name), and each variant's launch (name, threads,
 * shared memory) against the compiled PTX: the entry exists and its .maxntid is the launch's thread count. The kernels
 * themselves are checked on the GPU (CudaSelfTest wgmmacheck / selftest).
 */
class TcGemmChoiceTest {
    /** The largest dynamic shared memory an sm_90 block may opt into: 227 KB (CUDA C++ Programming Guide, Table 21). */
    static final int H100_SMEM = 227 * 1024;

    private static GemmVariant resolve(String p, String... loaded) {
        Set<String> have = Set.of(loaded);
        return DeviceKernels.resolveGemm(p, have::contains);
    }

    @Test
    void autoAndExplicit() {
        assertEquals(GemmVariant.WGMMA, resolve("auto", "gemm_wgmma", "gemm_wgmma_ws", "gemm_mma"));
        assertEquals(GemmVariant.MMA, resolve("auto", "gemm_mma"));
        assertEquals(GemmVariant.WGMMA_WS, resolve("wgmma_ws", "gemm_wgmma", "gemm_wgmma_ws", "gemm_mma"));
        assertEquals(GemmVariant.WGMMA_WS, resolve(" WGMMA_WS ", "gemm_wgmma", "gemm_wgmma_ws"));
        assertEquals(GemmVariant.WGMMA, resolve("wgmma", "gemm_wgmma", "gemm_wgmma_ws"));
        assertEquals(GemmVariant.MMA, resolve("mma", "gemm_wgmma", "gemm_wgmma_ws"));
        assertEquals(GemmVariant.WMMA, resolve("wmma", "gemm_wgmma"));
    }

    /** wgmma_ws is opt-in: without its kernel (no sm_90a module, or a stale one) the run goes on as auto would. */
    @Test
    void wsFallsBackAsAuto() {
        assertEquals(GemmVariant.MMA, resolve("wgmma_ws", "gemm_mma"));
        assertEquals(GemmVariant.WGMMA, resolve("wgmma_ws", "gemm_wgmma", "gemm_mma"));
    }

    @Test
    void badValueNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> resolve("wgmma-ws", "gemm_wgmma"));
        assertTrue(e.getMessage().contains("'wgmma-ws'"), e.getMessage());
    }

    /**
     * Launch sizes: 128×256 tiles of 64-wide K in 4 stages of (128 + 256) rows × 128 bytes, 1023 bytes of slack to
     * align the ring to 1024 (the 128-byte swizzle's period), and for wgmma_ws 2 × 4 mbarriers of 8 bytes; all within
     * what an sm_90 block may use.
     */
    @Test
    void launchSizes() {
        int stages = 4 * (128 + 256) * 64 * 2;
        for (boolean fp16 : new boolean[]{false, true}) {
            TcGemm w = DeviceKernels.tcGemm(GemmVariant.WGMMA, fp16), ws = DeviceKernels.tcGemm(GemmVariant.WGMMA_WS, fp16),
                    m = DeviceKernels.tcGemm(GemmVariant.MMA, fp16);
            String f = fp16 ? "_f16" : "";
            assertEquals("gemm_wgmma" + f, w.name());
            assertEquals("gemm_wgmma_ws" + f, ws.name());
            assertEquals("gemm_mma" + f, m.name());
            assertEquals(256, w.threads());
            assertEquals(384, ws.threads());   // 1 producer + 2 consumer warpgroups
            assertTrue(w.smem() >= stages + 1023 && w.smem() <= H100_SMEM, "wgmma smem " + w.smem());
            assertTrue(ws.smem() >= stages + 1023 + 64 && ws.smem() <= H100_SMEM, "wgmma_ws smem " + ws.smem());
        }
        assertThrows(IllegalArgumentException.class, () -> DeviceKernels.tcGemm(GemmVariant.WMMA, false));
    }

    /** Each launch names an entry of the PTX the build made, whose .maxntid (from __launch_bounds__) is its threads. */
    @Test
    void launchesMatchThePtx() throws IOException {
        String wg = ptx(CudaRuntime.PTX_SM90A_RESOURCE), base = ptx(CudaRuntime.PTX_RESOURCE);
        for (boolean fp16 : new boolean[]{false, true}) {
            for (GemmVariant g : new GemmVariant[]{GemmVariant.WGMMA, GemmVariant.WGMMA_WS}) {
                TcGemm t = DeviceKernels.tcGemm(g, fp16);
                assertEquals(t.threads(), maxntid(wg, t.name()), t.name());
            }
            TcGemm m = DeviceKernels.tcGemm(GemmVariant.MMA, fp16);
            assertTrue(base.contains(".entry " + m.name() + "("), m.name());
        }
    }

    private static String ptx(String resource) throws IOException {
        try (InputStream in = CudaRuntime.class.getResourceAsStream(resource)) {
            Assumptions.assumeTrue(in != null, "no PTX built here (no nvcc)");
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    private static int maxntid(String ptx, String entry) {
        Matcher m = Pattern.compile("\\.entry " + entry + "\\((?:[^)]*)\\)\\s*\\.maxntid (\\d+), 1, 1").matcher(ptx);
        assertTrue(m.find(), "no .entry " + entry + " with .maxntid in the PTX");
        return Integer.parseInt(m.group(1));
    }
}
