package modeldiff.forward.torch;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The MoE / gpt-oss fixes torch honours give what the float64 reference gives with the same fix (within fp32 noise,
 * log-L2 ≤ −5 on the logits), and are at least a decade farther from the clean reference.
 */
class TorchMoeFixesTest {
    @BeforeAll
    static void nativeLibrary() {
        TorchTests.assumeTorch();
    }

    @ParameterizedTest
    @CsvSource({"glm4_moe, moe.bias_in_weights", "glm4_moe, moe.routed_scaling=1", "qwen3_moe, moe.renormalize=false",
            "olmoe, moe.renormalize=true", "olmoe, qk_norm.off", "mixtral, moe.routed_scaling=2.5",
            "gpt_oss, attn.no_sinks", "gpt_oss, moe.softmax_before_topk", "gpt_oss, rope.yarn_truncate=true",
            "gpt_oss, attn.no_yarn_mscale"})
    void torchHonoursTheFix(String fixture, String fix) {
        Model model = Model.open(Fixtures.model(fixture));
        ForwardInput in = new ForwardInput(TraceFiles.read(Fixtures.trace(fixture, "hf-float32.safetensors")).tokens(), 0);
        Trace torch = new TorchPass(Precision.FP32, Fixes.parse(fix)).run(model, in, ProbeLevel.ALL);
        Trace ref = new ReferencePass(Fixes.parse(fix)).run(model, in, ProbeLevel.ALL);
        Trace clean = new ReferencePass().run(model, in, ProbeLevel.ALL);
        double withFix = Metrics.logL2(ref.probe("logits").data(), torch.probe("logits").data());
        double againstClean = Metrics.logL2(clean.probe("logits").data(), torch.probe("logits").data());
        assertTrue(withFix <= -5 && againstClean > withFix + 1, fixture + " " + fix + ": vs reference with the fix " + withFix
                + ", vs the clean reference " + againstClean);
    }
}
