package modeldiff.forward;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The float64 reference against HF transformers' own forward pass of the same release (traces made by
 * reference-impls/hf_trace.py on each committed fixture). This is the test that makes the reference a ground truth.
 */
class HfParityTest {

    /** HF computing in float64 (its float32 upcasts made float64 too) must agree with our float64 math to 1e-10. */
    @TestFactory
    List<DynamicTest> referenceMatchesHfFloat64() {
        return parity("hf-float64", -10.0);
    }

    /**
     * Against HF in float32 the difference is what float32 costs: the bound only catches gross mistakes; the measured
     * values are in docs/reference.md.
     */
    @TestFactory
    List<DynamicTest> referenceNearHfFloat32() {
        return parity("hf-float32", -4.5);
    }

    private List<DynamicTest> parity(String prefix, double bound) {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : Fixtures.names()) {
            Path dir = Fixtures.ROOT.resolve(name).resolve("traces");
            List<Path> traces;
            try (var s = Files.list(dir)) {
                traces = s.filter(p -> p.getFileName().toString().startsWith(prefix)).sorted().toList();
            } catch (java.io.IOException e) {
                traces = List.of();
            }
            for (Path tracePath : traces) {
                tests.add(DynamicTest.dynamicTest(name + "/" + tracePath.getFileName(), () -> {
                    Trace hf = TraceFiles.read(tracePath);
                    Model model = Model.open(Fixtures.model(name));
                    Trace ours = new ReferencePass().run(model, new ForwardInput(hf.tokens(), hf.positionOffset()), ProbeLevel.ALL);
                    assertFalse(hf.probeNames().isEmpty());
                    StringBuilder worst = new StringBuilder();
                    double worstValue = Double.NEGATIVE_INFINITY;
                    for (String probe : hf.probeNames()) {
                        Trace.Probe h = hf.probe(probe), o = ours.probe(probe);
                        assertTrue(o != null, "reference lacks probe " + probe);
                        assertEquals(h.cols(), o.cols(), "width of " + probe);
                        double e = Metrics.logL2(h.data(), o.data());
                        if (e > worstValue) {
                            worstValue = e;
                            worst.setLength(0);
                            worst.append(probe);
                        }
                    }
                    assertTrue(worstValue <= bound, String.format("%s: worst probe %s at log-L2 %.2f > %.1f", tracePath, worst, worstValue, bound));
                }));
            }
        }
        return tests;
    }
}
