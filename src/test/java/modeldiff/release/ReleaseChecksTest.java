package modeldiff.release;

import modeldiff.Fixtures;
import modeldiff.forward.cuda.CudaRuntime;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Skip only what this machine cannot run by design, and say so; every other problem is a failure. */
class ReleaseChecksTest {
    @TempDir
    Path tmp;

    private ReleaseChecks checks() {
        Path m = Fixtures.model("llama");
        return new ReleaseChecks(m, ReleaseChecks.defaultTracesDir(m), n -> n.startsWith("hf-"), tmp, new Baseline(tmp.resolve("baselines")));
    }

    @Test
    void anErrorInsideACheckIsAFailureNamingItNotASkip() {
        ReleaseChecks rc = checks();
        for (RuntimeException e : new RuntimeException[]{new IllegalStateException("cannot load the thing"),
                new UnsupportedOperationException("torch:fp16 not available for this family")}) {
            ReleaseChecks.Outcome o = rc.run(new ReleaseChecks.Check("x", "a check that breaks", () -> { throw e; }));
            assertEquals(ReleaseChecks.Status.FAIL, o.status(), o.message());
            assertTrue(o.message().contains(e.getMessage()), o.message());
        }
    }

    @Test
    void cudaWithoutAGpuIsASkipThatSaysWhy() {
        Assumptions.assumeFalse(CudaRuntime.available(), "a GPU is here");
        ReleaseChecks rc = checks();
        ReleaseChecks.Check cuda = rc.checks().stream().filter(c -> c.id().equals("impl:cuda:fp32")).findFirst().orElseThrow();
        ReleaseChecks.Outcome o = rc.run(cuda);
        assertEquals(ReleaseChecks.Status.SKIP, o.status());
        assertTrue(o.message().startsWith("cuda:fp32 is not available here: no NVIDIA GPU driver"), o.message());
    }

    @Test
    void anAcceptedFailureSaysItsReason() {
        ReleaseChecks rc = checks();
        new Baseline(tmp.resolve("baselines")).accept("llama", "x", "known and harmless");
        ReleaseChecks.Outcome o = rc.run(new ReleaseChecks.Check("x", "fails", () -> { throw new ReleaseChecks.Failure("off by a bit"); }));
        assertEquals(ReleaseChecks.Status.ACCEPTED, o.status());
        assertTrue(o.message().contains("known and harmless") && o.message().contains("off by a bit"), o.message());
    }
}
