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
}
