package modeldiff.hunt;

import modeldiff.Fixtures;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fixes that have no HF-planted trace yet (the GPU box's run for them did not happen): a target made by our own lowp
 * pass with the fix applied, on HF-made fixtures, must be named exactly by the hunt. Weaker than an HF plant (the
 * same code plants and finds), so it checks the hunt's search and the catalog's candidates, not the fix's meaning;
 * the meaning is checked on its own below.
 */
class OwnPlantHuntTest {
    @ParameterizedTest
    @CsvSource({"gpt_oss, rope.yarn_truncate=true", "gpt_oss, attn.no_yarn_mscale", "gpt_oss, mlp.no_clamp",
            "olmoe, qk_norm.off", "qwen3_moe, qk_norm.off", "glm4_moe, moe.bias_in_weights", "glm4_moe, moe.routed_scaling=1",
            "qwen3_moe, moe.renormalize=false"})
    void huntNamesTheFix(String fixture, String fix) {
        Model model = Model.open(Fixtures.model(fixture));
        int[] tokens = TraceFiles.read(Fixtures.trace(fixture, "hf-float32.safetensors")).tokens();
        Trace target = new LowpPass(Precision.FP32, Fixes.parse(fix)).run(model, new ForwardInput(tokens, 0), ProbeLevel.ALL);
        Hunt.Result r = Hunt.run(model, target, null, null, s -> { });
        if (fix.equals("mlp.no_clamp")) {
            // no activation of this tiny model reaches the limit 7: the fix changes nothing, and the hunt says so
            assertEquals(Hunt.Verdict.MATCH, r.verdict(), r.sentence());
            return;
        }
        assertEquals(Hunt.Verdict.EXPLAINED, r.verdict(), r.sentence());
        assertEquals(modeldiff.Fixtures.canonicalSet(List.of(fix)), modeldiff.Fixtures.canonicalSet(r.best().fixes()), r.sentence());
    }

    @Test
    void yarnFixesChangeWhatTheyName() {
        var spec = Model.open(Fixtures.model("gpt_oss")).config.layers.get(0).rope();
        assertEquals("yarn", spec.type());
        var plain = modeldiff.forward.reference.RopeFormulas.frequencies(spec, 16, 64);
        var truncated = modeldiff.forward.reference.RopeFormulas.frequencies(Fixes.parse("rope.yarn_truncate=true").rope(spec), 16, 64);
        var noMscale = modeldiff.forward.reference.RopeFormulas.frequencies(Fixes.parse("attn.no_yarn_mscale").rope(spec), 16, 64);
        assertNotEquals(java.util.Arrays.toString(plain.invFreq()), java.util.Arrays.toString(truncated.invFreq()));
        assertEquals(plain.attentionScaling(), truncated.attentionScaling());
        // factor 32: mscale = 0.1·ln 32 + 1
        assertEquals(0.1 * Math.log(32) + 1, plain.attentionScaling(), 1e-15);
        assertEquals(1.0, noMscale.attentionScaling());
        assertTrue(java.util.Arrays.equals(plain.invFreq(), noMscale.invFreq()));
    }
}
