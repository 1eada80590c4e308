package modeldiff.compare;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;

import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;

/**
 * Noise floors measured on the model and input at hand, probe by probe, instead of a table.
 * <ul>
 * <li>Against the float64 reference, what precision p costs is the distance between the reference and the faithful
 * reduced-precision pass lowp:p.</li>
 * <li>Between two computations at the same precision (a trace against lowp:p), what remains is near-ties: values
 * within an fp32 ulp of a rounding midpoint, which another correct kernel rounds the other way. Measured as the
 * largest distance between lowp:p and {@link #NUDGED_RUNS} runs of lowp:p whose fp32 results are nudged ±1 ulp before
 * rounding, and never below the cost of {@link #FLIPS} elements one dtype-ulp off at the probe's largest value.</li>
 * </ul>
 * Each bound is that distance plus {@link #MARGIN} decades: HF's own kernels round differently from the emulation at
 * near-ties, so a correct implementation lands anywhere in a band around the measured value (docs/metrics.md gives
 * the measurements behind the margin).
 */
public final class MeasuredNoiseFloor implements NoiseFloor {
    /** Decades added to each measured distance (measured spread on the fixtures, docs/metrics.md). */
    public static final double MARGIN = 0.5;
    /** Float64 against float64: anything above this is not rounding (HF strict-float64 traces sit below −10). */
    public static final double FLOAT64_BOUND = -9.0;
    public static final int NUDGED_RUNS = 2;
    public static final int FLIPS = 4;

    public enum Against { FLOAT64_REFERENCE, SAME_PRECISION }

    private final Model model;
    private final ForwardInput input;
    private final Against against;
    private final Map<Precision, Map<String, Double>> measured = new EnumMap<>(Precision.class);

    public MeasuredNoiseFloor(Model model, ForwardInput input, Against against) {
        this.model = model;
        this.input = input;
        this.against = against;
    }

    @Override
    public synchronized double upperBound(Precision precision, String probe) {
        if (precision == Precision.FP64) return FLOAT64_BOUND;
        if (precision != Precision.FP32 && precision != Precision.BF16 && precision != Precision.FP16)
            throw new BadInputException("no measured noise floor for " + precision.id());
        Map<String, Double> m = measured.computeIfAbsent(precision, this::measure);
        Double d = m.get(probe);
        if (d == null) throw new BadInputException("no measured noise floor for probe '" + probe + "'");
        return Math.max(d, Metrics.LOG_L2_FLOOR) + MARGIN;
    }

    private Map<String, Double> measure(Precision p) {
        Map<String, Double> out = new HashMap<>();
        Trace lowp = new LowpPass(p, Fixes.NONE).run(model, input, ProbeLevel.ALL);
        if (against == Against.FLOAT64_REFERENCE) {
            Trace ref = new ReferencePass().run(model, input, ProbeLevel.ALL);
            // In fp32 the rounding of each op is not the whole cost: GEMMs accumulate in fp32 too.
            if (p == Precision.FP32) lowp = new LowpPass(p, Fixes.NONE, 0, true).run(model, input, ProbeLevel.ALL);
            for (String name : ref.probeNames()) out.put(name, Metrics.logL2(ref.probe(name).data(), lowp.probe(name).data()));
            return out;
        }
        for (String name : lowp.probeNames()) out.put(name, fewUlps(lowp.probe(name).data(), p));
        for (int seed = 1; seed <= NUDGED_RUNS; seed++) {
            Trace nudged = new LowpPass(p, Fixes.NONE, seed).run(model, input, ProbeLevel.ALL);
            for (String name : lowp.probeNames())
                out.merge(name, Metrics.logL2(lowp.probe(name).data(), nudged.probe(name).data()), Math::max);
        }
        return out;
    }

    /** log-L2 of {@link #FLIPS} elements each one ulp (of precision p) off at the tensor's largest magnitude. */
    static double fewUlps(double[] x, Precision p) {
        double max = 0, sq = 0;
        for (double v : x) {
            if (!Double.isFinite(v)) continue;
            max = Math.max(max, Math.abs(v));
            sq += v * v;
        }
        if (sq == 0) return Metrics.LOG_L2_FLOOR;
        int mantissa = p == Precision.BF16 ? 7 : p == Precision.FP16 ? 10 : 23;
        double ulp = Math.scalb(1.0, Math.getExponent(max) - mantissa);
        return Math.log10(Math.sqrt(FLIPS) * ulp / Math.sqrt(sq));
    }

    @Override
    public String describe() {
        return against == Against.FLOAT64_REFERENCE
                ? "measured on this model and input: float64 reference vs lowp at the candidate's precision, + " + MARGIN + " decades"
                : "measured on this model and input: lowp vs lowp with another fp32 summation order, + " + MARGIN + " decades";
    }

    @Override
    public boolean provisional() {
        return false;
    }
}
