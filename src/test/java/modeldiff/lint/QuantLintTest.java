package modeldiff.lint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * weights.quant_scale: one finding per quantized weight whose scale is missing or malformed, naming the tensor; a
 * clean MXFP4 release gets none; DeepSeek's multi-token-prediction layers are a note, not "unexpected".
 */
class QuantLintTest {
    static final Path RELEASE = Path.of("src/test/resources/quant/gpt_oss_mxfp4");

    private static List<Finding> of(LintReport r, String rule) {
        return r.findings().stream().filter(f -> f.rule().equals(rule)).toList();
    }

    private static String all(LintReport r) {
        return r.findings().stream().map(f -> f.severity().id() + " " + f.rule() + ": " + f.message()).collect(Collectors.joining("\n"));
    }

    @Test
    void cleanMxfp4ReleaseHasNoQuantFindings() {
        LintReport r = Planted.lintUnchanged(RELEASE, LintOptions.defaults());
        assertTrue(of(r, Rules.QUANT_SCALE).isEmpty(), all(r));
        assertTrue(of(r, Rules.UNEXPECTED).isEmpty() && of(r, Rules.MISSING).isEmpty(), all(r));
    }

    @Test
    void eachBrokenScaleIsOneFindingNamingIt(@TempDir Path tmp) throws IOException {
        String l0 = "model.layers.0.mlp.experts.gate_up_proj", l1 = "model.layers.1.mlp.experts.down_proj";
        Path dir = modeldiff.model.QuantizedWeightsTestAccess.copyWithout(RELEASE, tmp.resolve("m"), l0 + "_scales", l1 + "_scales");
        LintReport r = Planted.lintUnchanged(dir, LintOptions.defaults());
        List<Finding> q = of(r, Rules.QUANT_SCALE);
        assertEquals(2, q.size(), all(r));
        assertTrue(q.get(0).message().contains("'" + l0 + "_scales' is missing"), q.get(0).message());
        assertTrue(q.get(1).message().contains("'" + l1 + "_scales' is missing"), q.get(1).message());
        assertEquals(Severity.ERROR, q.get(0).severity());
        assertTrue(of(r, Rules.UNEXPECTED).isEmpty() && of(r, Rules.MISSING).isEmpty(), "said once, by quant_scale:\n" + all(r));
    }

    @Test
    void fp8ScaleOfTheWrongShapeIsOneFinding(@TempDir Path tmp) throws IOException {
        String w = "model.layers.2.mlp.up_proj.weight";
        Path dir = modeldiff.model.QuantizedWeightsTestAccess.copyWithF32(Path.of("src/test/resources/quant/llama_fp8"), tmp.resolve("m"),
                w + "_scale_inv", 1, 1);
        LintReport r = Planted.lintUnchanged(dir, LintOptions.defaults());
        List<Finding> q = of(r, Rules.QUANT_SCALE);
        assertEquals(1, q.size(), all(r));
        assertTrue(q.get(0).message().contains("tensor '" + w + "'") && q.get(0).message().contains("'" + w + "_scale_inv' has shape [1, 1]"),
                q.get(0).message());
        assertTrue(of(r, Rules.DTYPE_MISMATCH).stream().noneMatch(f -> f.severity() == Severity.ERROR), "said once:\n" + all(r));
    }

    /** NaN codes inside quantized data: an e4m3 S.1111.111 byte, an e8m0 0xFF scale; named by the stored tensor. */
    @Test
    void nanCodesInQuantizedDataAreNonfinite(@TempDir Path tmp) throws IOException {
        String down = "model.layers.1.mlp.down_proj.weight";
        Path fp8 = modeldiff.model.QuantizedWeightsTestAccess.copyWithByte(Path.of("src/test/resources/quant/llama_fp8"), tmp.resolve("a"), down, 5, 0xff);
        List<Finding> n = of(Planted.lintUnchanged(fp8, LintOptions.defaults()), Rules.NONFINITE);
        assertEquals(1, n.size(), n.toString());
        assertTrue(n.get(0).message().contains("'" + down + "' holds 1 NaN") && n.get(0).message().contains("flat index 5"), n.get(0).message());
        String scales = "model.layers.0.mlp.experts.down_proj_scales";
        Path mx = modeldiff.model.QuantizedWeightsTestAccess.copyWithByte(RELEASE, tmp.resolve("b"), scales, 9, 0xff);
        n = of(Planted.lintUnchanged(mx, LintOptions.defaults()), Rules.NONFINITE);
        assertEquals(1, n.size(), n.toString());
        assertTrue(n.get(0).message().contains("'" + scales + "' holds 1 NaN"), n.get(0).message());
        assertTrue(of(Planted.lintUnchanged(Path.of("src/test/resources/quant/llama_fp8"), LintOptions.defaults()), Rules.NONFINITE).isEmpty());
    }

    /** num_nextn_predict_layers: the MTP layer's tensors (stored as layer num_hidden_layers) are skipped knowingly. */
    @Test
    void mtpLayersAreANoteNotUnexpected(@TempDir Path tmp) throws IOException {
        Path dir = modeldiff.model.QuantizedWeightsTestAccess.copyWithExtra(Path.of("src/test/resources/quant/gpt_oss_dequant"),
                tmp.resolve("m"), "model.layers.2.eh_proj.weight");
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        cfg.put("num_nextn_predict_layers", 1);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        LintReport r = Planted.lintUnchanged(dir, LintOptions.defaults());
        List<Finding> u = of(r, Rules.UNEXPECTED);
        assertEquals(1, u.size(), all(r));
        assertEquals(Severity.INFO, u.get(0).severity());
        assertTrue(u.get(0).message().contains("multi-token-prediction") && u.get(0).message().contains("model.layers.2.eh_proj.weight"), all(r));
    }
}
