package modeldiff.forward;

import modeldiff.Fixtures;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The reference splits matrix products over output blocks and attention over heads, each output element computed by one
 * task in a fixed order: its traces must be bit-identical with 1, 2 and 3 threads, on every fixture family and on a
 * synthesized model whose odd sizes leave partial panels and row blocks everywhere.
 */
class ThreadCountTest {
    @TestFactory
    List<DynamicTest> traceIsBitIdenticalForAnyThreadCount() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : Fixtures.names())
            tests.add(DynamicTest.dynamicTest(name, () -> check(Model.open(Fixtures.model(name)), 11)));
        tests.add(DynamicTest.dynamicTest("synthetic odd sizes", () -> check(Model.open(OddModel.get()), 13)));
        return tests;
    }

    private static void check(Model model, int tokens) {
        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) ids[i] = (int) ((i * 7919L + 13) % model.config.vocabSize);
        ForwardInput in = new ForwardInput(ids, 5);
        Trace one = new ReferencePass(Fixes.NONE, 1).run(model, in, ProbeLevel.ALL);
        for (int threads = 2; threads <= 3; threads++) {
            Trace t = new ReferencePass(Fixes.NONE, threads).run(model, in, ProbeLevel.ALL);
            assertEquals(one.probeNames(), t.probeNames());
            for (String p : one.probeNames())
                assertArrayEquals(one.probe(p).data(), t.probe(p).data(), p + " with " + threads + " threads");
        }
    }
}
