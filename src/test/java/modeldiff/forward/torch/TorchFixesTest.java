package modeldiff.forward.torch;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The torch pass honours fixes as the reference does: with the same fixes torch:fp32 stays within 10^-5 of the
 * float64 reference at every probe, and the fix really changes the output. Planted HF float32 traces (a real HF run
 * with the bug put in) are matched too.
 */
class TorchFixesTest {

    @BeforeAll
    static void nativeLibrary() {
        TorchTests.assumeTorch();
    }

    /** fixture, comma-separated fixes. */
    private static final String[][] CASES = {
            {"gemma", "act.gelu_exact"},
            {"llama", "act.gelu_tanh"},
            {"gpt2", "act.gelu_exact"},
            {"mistral", "window=3"},
            {"gemma2", "attn.no_softcap"},
            {"gemma2", "logits.no_softcap"},
            {"llama", "attn.scalar=64"},
            {"gpt2", "attn.scale=0.5"},
            {"qwen2", "rope.theta=10000,norm.eps=1e-5"},
            {"qwen3", "norm.eps=0.01"},
            {"nemotron", "rope.partial=1"},
            {"llama", "rope.partial=0.5"},
            {"llama", "rope.scaling_ignored"},
            {"llama-linear", "rope.scaling_ignored"},
            {"gemma3", "rope.scaling_ignored"},
            {"llama", "qk.interleaved"},
            {"phi3", "qk.interleaved"},
            {"gemma", "norm.no_unit_offset"},
            {"llama", "norm.unit_offset"},
            {"nemotron", "norm.no_unit_offset"},
            {"gpt2", "norm.unit_offset"},
            {"llama", "mlp.swap_gate_up"},
            {"gemma", "embed.scale_none"},
            {"gemma", "input.drop_bos"},
            {"qwen3", "input.add_bos"},
    };

    @TestFactory
    List<DynamicTest> fixesMatchReference() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] cs : CASES) {
            tests.add(DynamicTest.dynamicTest(cs[0] + " " + cs[1], () -> {
                Fixes fixes = Fixes.parse(cs[1]);
                Trace hf = TraceFiles.read(Fixtures.trace(cs[0], "hf-float64.safetensors"));
                Model model = Model.open(Fixtures.model(cs[0]));
                ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
                if (fixes.addBos && !model.config.bosTokenIds.isEmpty() && in.tokens()[0] == model.config.bosTokenIds.get(0))
                    in = new ForwardInput(java.util.Arrays.copyOfRange(in.tokens(), 1, in.length()), in.positionOffset());
                Trace torch = new TorchPass(Precision.FP32, fixes).run(model, in, ProbeLevel.ALL);
                Trace ref = new ReferencePass(fixes).run(model, in, ProbeLevel.ALL);
                Trace plain = new TorchPass(Precision.FP32, Fixes.NONE).run(model, in, ProbeLevel.ALL);
                double worst = worst(ref, torch);
                // How far the fix moves torch's own output (largest probe log-L2); a changed token count moves everything.
                double effect = plain.tokens().length == torch.tokens().length ? worst(plain, torch) : 0;
                System.out.printf("torch:fp32 %-13s %-32s vs reference(fixes) worst %7.2f; the fix moves torch by %7.2f%n",
                        cs[0], cs[1], worst, effect);
                assertTrue(worst <= -5.0, cs[0] + " " + cs[1] + ": worst " + worst);
                assertTrue(effect > worst + 1, cs[0] + " " + cs[1] + ": the fix moved torch's output by " + effect
                        + ", not clearly more than torch's error " + worst);
            }));
        }
        return tests;
    }

    /** HF float32 runs with a bug planted (reference-impls/hf_trace.py --plant) against torch:fp32 with that fix. */
    @TestFactory
    List<DynamicTest> plantedHfTraces() {
        String[][] planted = {
                {"gemma", "planted-act.gelu_exact-float32.safetensors", "act.gelu_exact"},
                {"gemma2", "planted-attn.no_softcap-float32.safetensors", "attn.no_softcap"},
                {"mistral", "planted-window4-float32.safetensors", "window=4"},
        };
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] p : planted) {
            tests.add(DynamicTest.dynamicTest(p[0] + " " + p[2], () -> {
                Path tp = Fixtures.trace(p[0], p[1]);
                Trace hf = TraceFiles.read(tp);
                Model model = Model.open(Fixtures.model(p[0]));
                ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
                Trace fixed = new TorchPass(Precision.FP32, Fixes.parse(p[2])).run(model, in, ProbeLevel.ALL);
                Trace plain = new TorchPass(Precision.FP32, Fixes.NONE).run(model, in, ProbeLevel.ALL);
                double wf = worst(hf, fixed), wp = worst(hf, plain);
                System.out.printf("planted %-8s %-16s HF fp32 vs torch:fp32 with fix %7.2f, without %7.2f%n", p[0], p[2], wf, wp);
                assertTrue(wf <= -4.5, tp + ": " + wf);
                assertTrue(wp > wf + 1, tp + ": without the fix torch should diverge, got " + wp);
            }));
        }
        return tests;
    }

    /**
     * Rounding-only fixes mean something only below fp32: in fp16 each must change torch's output (softmax.lowp may
     * not: torch's CPU half softmax already accumulates in fp32 and rounds once), and torch:fp16 with the fix stays
     * near lowp:fp16 with the fix.
     */
    @TestFactory
    List<DynamicTest> roundingFixesInFp16() {
        String[][] cases = {
                {"gemma", "norm.cast_before_weight", "changes"},
                {"gemma", "embed.scale_fp32", "changes"},
                {"llama", "rope.inv_freq_lowp", "changes"},
                {"llama", "softmax.lowp", "may-not-change"},
        };
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] cs : cases) {
            tests.add(DynamicTest.dynamicTest(cs[0] + " " + cs[1], () -> {
                Fixes fixes = Fixes.parse(cs[1]);
                Trace hf = TraceFiles.read(Fixtures.trace(cs[0], "hf-float16.safetensors"));
                Model model = Model.open(Fixtures.model(cs[0]));
                ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
                Trace fixed = new TorchPass(Precision.FP16, fixes).run(model, in, ProbeLevel.ALL);
                Trace plain = new TorchPass(Precision.FP16, Fixes.NONE).run(model, in, ProbeLevel.ALL);
                Trace lowp = new modeldiff.forward.lowp.LowpPass(Precision.FP16, fixes).run(model, in, ProbeLevel.ALL);
                double effect = worst(plain, fixed), vsLowp = worst(lowp, fixed), lowpEffect = worst(plain, lowp);
                System.out.printf("torch:fp16 %-6s %-24s moves torch by %7.2f; vs lowp:fp16 with the fix %7.2f (lowp+fix vs torch plain %7.2f)%n",
                        cs[0], cs[1], effect, vsLowp, lowpEffect);
                for (String probe : fixed.probeNames())
                    for (double d : fixed.probe(probe).data()) assertTrue(Double.isFinite(d), probe + " not finite");
                if (cs[2].equals("changes")) assertTrue(effect > Metrics.LOG_L2_FLOOR, cs[1] + " changed nothing");
            }));
        }
        return tests;
    }

    @Test
    void bf16AnglesRefused() {
        assertThrows(BadInputException.class, () -> new TorchPass(Precision.FP32, Fixes.parse("rope.bf16_angles")));
    }

    private static double worst(Trace expected, Trace actual) {
        double w = Double.NEGATIVE_INFINITY;
        for (String probe : expected.probeNames())
            w = Math.max(w, Metrics.logL2(expected.probe(probe).data(), actual.probe(probe).data()));
        return w;
    }
}
