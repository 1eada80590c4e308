package modeldiff.forward;

import modeldiff.Fixtures;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryEstimateTest {
    /** The estimate's trace part covers what a run really keeps, on every family and both probe levels. */
    @Test
    void traceEstimateCoversTheTrace() {
        for (String name : Fixtures.names()) {
            Model m = Model.open(Fixtures.model(name));
            for (ProbeLevel level : ProbeLevel.values()) {
                int[] ids = new int[9];
                for (int i = 0; i < ids.length; i++) ids[i] = (i * 31 + 3) % m.config.vocabSize;
                ReferencePass pass = new ReferencePass(Fixes.NONE, 1);
                Trace t = pass.run(m, new ForwardInput(ids, 0), level);
                long held = 0;
                for (Trace.Probe p : t.probes().values()) held += 8L * p.data().length;
                MemoryEstimate e = pass.memoryEstimate(m.config, ids.length, level);
                assertTrue(e.traceBytes() >= held, name + " " + level + ": estimate " + e.traceBytes() + " < " + held);
            }
        }
    }

    @Test
    void refusesWhenTheHeapIsTooSmall() {
        Model m = Model.open(Fixtures.model("llama"));
        MemoryEstimate e = MemoryEstimate.of(m.config, 64, ProbeLevel.ALL, 2, 8);
        e.require("test", e.total());
        BadInputException x = assertThrows(BadInputException.class, () -> e.require("the reference pass", e.total() - 1));
        assertTrue(x.getMessage().contains("needs about") && x.getMessage().contains("-Xmx"), x.getMessage());
    }
}
