package modeldiff.forward;

import modeldiff.compare.Metrics;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.forward.torch.TorchPass;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks the torch pass against the independently coded lowp pass on a test model (MlaTest, Llama4Test): the same
 * rounding points at fp16, and teacher forcing at fp32. Expert-choice probes are categorical and left out.
 */
final class TorchAgreement {
    private TorchAgreement() {
    }

    /**
     * torch:fp16 rounds where lowp:fp16 does: at every probe it is closer to lowp:fp16 than the float64 reference is,
     * and on average by more than a decade.
     */
    static void fp16RoundsAsLowp(String label, Model m, ForwardInput in) {
        Trace ref = new ReferencePass().run(m, in, ProbeLevel.ALL);
        Trace lowp = new LowpPass(Precision.FP16, Fixes.NONE).run(m, in, ProbeLevel.ALL);
        Trace torch = new TorchPass(Precision.FP16, Fixes.NONE).run(m, in, ProbeLevel.ALL);
        double sumTorch = 0, sumRef = 0;
        int n = 0;
        for (String p : ref.probeNames()) {
            if (p.endsWith(".experts")) continue;
            double et = Metrics.logL2(lowp.probe(p).data(), torch.probe(p).data());
            double er = Metrics.logL2(lowp.probe(p).data(), ref.probe(p).data());
            System.out.printf("%s fp16 %-22s torch:fp16 vs lowp:fp16 %7.2f  reference vs lowp:fp16 %7.2f%n", label, p, et, er);
            assertTrue(et < er, p + ": torch:fp16 " + et + " not closer to lowp:fp16 than the reference " + er);
            sumTorch += et;
            sumRef += er;
            n++;
        }
        System.out.printf("%s fp16 mean: torch:fp16 vs lowp:fp16 %.2f, reference vs lowp:fp16 %.2f%n", label, sumTorch / n, sumRef / n);
        assertTrue(sumTorch / n < sumRef / n - 1, "mean " + sumTorch / n + " vs " + sumRef / n);
    }

    /**
     * Forced by a lowp:fp32 trace, torch:fp32 computes each probe from lowp's input to it: within the fp32 band of
     * TorchTeacherForcingTest (−5) of lowp's own value at every probe.
     */
    static void forcedByLowpStaysWithinFp32Noise(String label, Model m, ForwardInput in) {
        Trace lowp = new LowpPass(Precision.FP32, Fixes.NONE).run(m, in, ProbeLevel.ALL);
        Trace forced = new TorchPass(Precision.FP32, Fixes.NONE).run(m, ForwardInput.forcedBy(lowp), ProbeLevel.ALL);
        assertTrue(forced.extra().containsKey("teacher_forced"));
        double worst = Double.NEGATIVE_INFINITY;
        String at = null;
        for (String p : lowp.probeNames()) {
            if (p.endsWith(".experts")) continue;
            double e = Metrics.logL2(lowp.probe(p).data(), forced.probe(p).data());
            if (at == null || e > worst) {
                worst = e;
                at = p;
            }
        }
        System.out.printf("%s torch:fp32 forced by lowp:fp32: worst probe %.2f at %s%n", label, worst, at);
        assertTrue(worst <= -5.0, "worst probe " + at + " " + worst);
    }
}
