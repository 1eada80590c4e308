package modeldiff.forward;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The reduced-precision pass against HF transformers run in bf16 / fp16 on an H200 (traces from
 * reference-impls/hf_trace.py). It must sit much closer to HF than the float64 reference does: that is what makes a
 * bf16-only bug visible above rounding noise. Printed per probe: log-L2 of lowp and of the reference vs HF, and the
 * fraction of bit-identical elements.
 */
class LowpParityTest {
    /**
     * Fixtures whose bf16 trace (position 0) lowp reproduces bit for bit at every probe: 14 of the 27 with a bf16 trace
     * (measured with this test; docs/precision.md). The others hit an fp32 near-tie (a value within an fp32 ulp of a
     * bf16 midpoint, where CUDA's rsqrtf / reduction order decides) and the flipped element then spreads through these
     * tiny random models. Every fixture named here must have the trace (checked below), so the list cannot claim more
     * than is tested.
     */
    static final java.util.Set<String> BF16_BIT_EXACT = java.util.Set.of(
            "llama", "llama-linear", "mistral", "qwen3", "gemma", "gpt2", "nemotron",
            "olmo2", "gpt_neox", "gemma3-v4", "phi3-longrope", "qwen2-swa", "mixtral", "olmoe");

    @TestFactory
    List<DynamicTest> lowpTracksHf() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : Fixtures.names()) {
            for (String dtype : new String[]{"bfloat16", "float16"}) {
                Path dir = Fixtures.ROOT.resolve(name).resolve("traces");
                List<Path> traces;
                try (var s = Files.list(dir)) {
                    traces = s.filter(p -> p.getFileName().toString().startsWith("hf-" + dtype)).sorted().toList();
                } catch (java.io.IOException e) {
                    // Missing data is a failure, not zero tests.
                    tests.add(DynamicTest.dynamicTest(name + ": traces", () -> fail(dir + ": cannot list the traces: " + e)));
                    continue;
                }
                for (Path tp : traces) tests.add(DynamicTest.dynamicTest(name + "/" + tp.getFileName(), () -> check(name, dtype, tp)));
            }
        }
        assertFalse(tests.isEmpty(), "no hf-bfloat16 / hf-float16 traces under " + Fixtures.ROOT.toAbsolutePath());
        return tests;
    }

    @org.junit.jupiter.api.Test
    void everyBitExactFixtureHasTheBf16TraceThatShowsIt() {
        for (String name : BF16_BIT_EXACT)
            assertTrue(Files.isRegularFile(Fixtures.trace(name, "hf-bfloat16.safetensors")), name + " is listed as bit-exact but has no hf-bfloat16 trace");
    }

    private static void check(String name, String dtype, Path tp) {
        Trace hf = TraceFiles.read(tp);
        Model model = Model.open(Fixtures.model(name));
        ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
        Trace low = new LowpPass(Precision.parse(dtype), Fixes.NONE).run(model, in, ProbeLevel.ALL);
        Trace ref = new ReferencePass().run(model, in, ProbeLevel.ALL);
        StringBuilder report = new StringBuilder(tp + "\n");
        List<String> failures = new ArrayList<>();
        for (String probe : hf.probeNames()) {
            Trace.Probe h = hf.probe(probe);
            Metrics.ProbeMetrics ml = Metrics.compare(h.data(), low.probe(probe).data(), h.rows(), h.cols());
            double er = Metrics.logL2(h.data(), ref.probe(probe).data());
            report.append(String.format("  %-22s lowp %7.2f  ref %7.2f  identical %6.2f%%%n", probe, ml.logL2(), er,
                    100 * ml.identicalFraction()));
            boolean bothExact = ml.logL2() <= Metrics.LOG_L2_FLOOR && er <= Metrics.LOG_L2_FLOOR;
            if (!bothExact && !(ml.logL2() < er)) failures.add(probe + " not closer than the reference (lowp " + ml.logL2() + " vs ref " + er + ")");
            if (dtype.equals("bfloat16") && hf.positionOffset() == 0 && BF16_BIT_EXACT.contains(name) && ml.identical() != ml.elements())
                failures.add(probe + " not bit-identical (" + ml.identical() + " of " + ml.elements() + ")");
        }
        System.out.print(report);
        assertTrue(failures.isEmpty(), tp + ": " + failures);
    }
}
