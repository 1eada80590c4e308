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
 * rounding (a different summation order, CUDA's 2-ulp rsqrtf), and never below the cost of a few elements
 * ({@link #FLIPS}, or one in {@link #FLIP_RATE_INVERSE} for bf16, 8x that for fp16) one dtype-ulp off at the tensor's RMS magnitude.</li>
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
    public static final int FLIP_RATE_INVERSE = 1000;

    public enum Against { FLOAT64_REFERENCE, SAME_PRECISION }

    private final Model model;
    private final ForwardInput input;
    private final Against against;
    private final Map<Precision, Map<String, Double>> measured = new EnumMap<>(Precision.class);
    /** A run the caller already has of exactly the pass a measurement would run (see {@link #reuse}); else null. */
    private Trace reference, lowpRun;
    private Precision lowpRunPrecision;

    public MeasuredNoiseFloor(Model model, ForwardInput input, Against against) {
        this.model = model;
        this.input = input;
        this.against = against;
    }

    /**
     * Hands over runs the caller made anyway, so measuring does not repeat them: {@code reference} a float64 reference
     * run without fixes, {@code lowp} a faithful lowp run (no fixes, no nudges) at {@code lowpPrecision}; either may be
     * null. They must be of this floor's model and input and record every probe the floor will be asked about.
     */
    public synchronized MeasuredNoiseFloor reuse(Trace reference, Trace lowp, Precision lowpPrecision) {
        this.reference = reference;
        this.lowpRun = lowp;
        this.lowpRunPrecision = lowp == null ? null : lowpPrecision;
        return this;
    }

    private Trace faithfulLowp(Precision p) {
        return lowpRun != null && lowpRunPrecision == p ? lowpRun : new LowpPass(p, Fixes.NONE).run(model, input, ProbeLevel.ALL);
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
        if (against == Against.FLOAT64_REFERENCE) {
            Trace ref = reference != null ? reference : new ReferencePass().run(model, input, ProbeLevel.ALL);
            // In fp32 the rounding of each op is not the whole cost: GEMMs accumulate in fp32 too.
            Trace lowp = p == Precision.FP32 ? new LowpPass(p, Fixes.NONE, 0, true).run(model, input, ProbeLevel.ALL) : faithfulLowp(p);
            for (String name : ref.probeNames()) out.put(name, Metrics.logL2(ref.probe(name).data(), lowp.probe(name).data()));
            return out;
        }
        Trace lowp = faithfulLowp(p);
        for (String name : lowp.probeNames()) out.put(name, fewUlps(lowp.probe(name).data(), p));
        for (int seed = 1; seed <= NUDGED_RUNS; seed++) {
            Trace nudged = new LowpPass(p, Fixes.NONE, seed).run(model, input, ProbeLevel.ALL);
            for (String name : lowp.probeNames())
                out.merge(name, Metrics.logL2(lowp.probe(name).data(), nudged.probe(name).data()), Math::max);
        }
        return out;
    }

    /** log-L2 of a few elements (see {@link #FLIPS}) each one ulp of precision p off at the tensor's RMS magnitude. */
    static double fewUlps(double[] x, Precision p) {
        double sq = 0;
        int n = 0;
        for (double v : x) {
            if (!Double.isFinite(v)) continue;
            sq += v * v;
            n++;
        }
        if (sq == 0) return Metrics.LOG_L2_FLOOR;
        double rms = Math.sqrt(sq / n);
        int mantissa = p == Precision.BF16 ? 7 : p == Precision.FP16 ? 10 : 23;
        double ulp = Math.scalb(1.0, Math.getExponent(rms) - mantissa);
        // A one-ulp fp32 difference crosses a rounding midpoint of the dtype with probability ~2^-(23 - mantissa):
        // fp16 (10 bits) sees 8x the near-tie flips of bf16 (7 bits).
        double flips = Math.max(FLIPS, (double) n / FLIP_RATE_INVERSE * Math.scalb(1.0, mantissa - 7));
        return Math.log10(Math.sqrt(flips) * ulp / Math.sqrt(sq));
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
