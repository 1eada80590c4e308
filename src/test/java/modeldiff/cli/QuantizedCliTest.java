package modeldiff.cli;

import modeldiff.model.QuantizedWeightsTestAccess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A release whose MXFP4 scale tensor is missing: exit 2 with one line naming it; the intact release loads (exit 0). */
class QuantizedCliTest {
    static final Path RELEASE = Path.of("src/test/resources/quant/gpt_oss_mxfp4");

    @Test
    void missingScaleIsExitTwoNamingTheTensor(@TempDir Path tmp) throws Exception {
        String scales = "model.layers.1.mlp.experts.down_proj_scales";
        Path dir = QuantizedWeightsTestAccess.copyWithout(RELEASE, tmp.resolve("m"), scales);
        CliRun r = CliRun.of("info", "--model", dir.toString());
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines(), r.toString());
        assertTrue(r.err().contains("'" + scales + "' is missing"), r.toString());
        CliRun ok = CliRun.of("info", "--model", RELEASE.toString());
        assertEquals(0, ok.code(), ok.toString());
        assertTrue(ok.out().contains("MXFP4"), ok.toString());
    }

    /** DeepSeek's multi-token-prediction layer (stored after the last layer) loads, skipped knowingly, said by info. */
    @Test
    void mtpLayerIsSkippedWithANote(@TempDir Path tmp) throws Exception {
        Path dir = QuantizedWeightsTestAccess.copyWithExtra(Path.of("src/test/resources/quant/gpt_oss_dequant"), tmp.resolve("m"),
                "model.layers.2.eh_proj.weight");
        var cfg = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("config.json").toFile());
        cfg.put("num_nextn_predict_layers", 1);
        java.nio.file.Files.writeString(dir.resolve("config.json"), cfg.toString());
        CliRun r = CliRun.of("info", "--model", dir.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("num_nextn_predict_layers 1: 1 tensor(s) of the multi-token-prediction layer(s) from layer 2 are skipped"), r.toString());
    }
}
