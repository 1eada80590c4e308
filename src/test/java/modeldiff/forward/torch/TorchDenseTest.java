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
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue #15 in the torch pass: its own fp32 RoPE tables beyond the original context (LongRoPE long factors, YaRN,
 * dynamic NTK at 40 > 32 positions), and the new fixes, each against the float64 reference with the same fixes.
 */
class TorchDenseTest {

    @BeforeAll
    static void nativeLibrary() {
        TorchTests.assumeTorch();
    }

    @TestFactory
    List<DynamicTest> torchFp32MatchesReference() {
        String[][] cases = {
                {"phi3-longrope", "hf-float64-off20.safetensors", ""},
                {"qwen2-yarn", "hf-float64-off40.safetensors", ""},
                {"llama-yarn-ds", "hf-float64-off40.safetensors", ""},
                {"llama-dynamic", "hf-float64.safetensors", ""},
                {"phi3-longrope", "hf-float64.safetensors", "rope.longrope_factors=long"},
                {"phi3-longrope", "hf-float64-off20.safetensors", "rope.longrope_factors=short"},
                {"smollm3", "hf-float64.safetensors", "rope.nope_inverted"},
                {"gpt_neox", "hf-float64.safetensors", "block.sequential"},
                {"olmo2", "hf-float64.safetensors", "qk_norm.per_head"},
                {"gemma3", "hf-float64.safetensors", "rope.scaling_all_layers"},
                {"gpt2-scaled", "hf-float64.safetensors", ""}};
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] c : cases) {
            tests.add(DynamicTest.dynamicTest(c[0] + "/" + c[1] + " " + c[2], () -> {
                Trace hf = TraceFiles.read(Fixtures.trace(c[0], c[1]));
                Model model = Model.open(Fixtures.model(c[0]));
                ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
                Fixes fixes = Fixes.parse(c[2]);
                Trace torch = new TorchPass(Precision.FP32, fixes).run(model, in, ProbeLevel.ALL);
                Trace ref = new ReferencePass(fixes).run(model, in, ProbeLevel.ALL);
                double worst = Double.NEGATIVE_INFINITY;
                String at = "";
                for (String p : ref.probeNames()) {
                    double e = Metrics.logL2(ref.probe(p).data(), torch.probe(p).data());
                    if (e > worst) {
                        worst = e;
                        at = p;
                    }
                }
                System.out.printf("torch:fp32 vs reference %-14s %-30s %-28s worst %7.2f at %s%n", c[0], c[1], c[2], worst, at);
                assertTrue(worst <= -5.0, c[0] + " " + c[2] + ": worst " + at + " at " + worst);
            }));
        }
        return tests;
    }
}
