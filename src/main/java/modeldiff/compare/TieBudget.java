package modeldiff.compare;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;

/**
 * The verdict rule for a teacher-forced comparison at one precision (a bf16 trace against lowp:bf16 forced by it):
 * each probe is one operation computed from the same inputs, so a correct implementation differs only where a value
 * sat within an fp32 ulp of a rounding midpoint and another kernel rounded it the other way (rsqrtf, summation order).
 * Such ties move <em>few</em> elements by <em>one</em> ulp. A probe is within the budget when
 * <ul>
 * <li>at most {@code max(MIN_DIFFERING, rate·n)} of its n elements differ, and</li>
 * <li>at most {@code max(MIN_FAR, rate·n / FAR_DIVISOR)} differ by more than {@link #FAR_ULPS} ulps (a sum with
 * cancellation can land a tie's fp32 error a few ulps of a small result away).</li>
 * </ul>
 * Excess is reported in decades above the budget, log10(count / allowed), so the hunt can rank candidates by it.
 * <p>
 * Calibration (docs/metrics.md, "Teacher-forced verdicts"): the counts were measured on the clean HF traces of the
 * calibration fixtures (gemma, gemma2, llama, mistral, gpt2, phi3) and the rates on the calibration input of the
 * real-shape runs; the held-out fixtures (gemma3, llama-linear, nemotron, qwen2, qwen3) and the other real-shape inputs
 * are judged with them, never used to set them.
 */
public final class TieBudget implements NoiseFloor {
    /**
     * Differing elements always allowed per probe. Measured: at most 4 per probe on the calibration fixtures' clean
     * bf16/fp16 traces (probes of 384–3072 elements; TeacherForcedVerdictsTest); 2× margin.
     */
    public static final int MIN_DIFFERING = 8;
    /** Elements beyond {@link #FAR_ULPS} always allowed. Measured: at most 1 per probe (calibration fixtures); 2×. */
    public static final int MIN_FAR = 2;
    public static final double FAR_ULPS = 2;
    public static final double FAR_DIVISOR = 10;
    /**
     * Share of elements ties may flip in large tensors, per precision: the largest share of differing elements at any
     * probe of lowp forced by a clean HF run of the real-shape calibration input (2.05B Gemma-shaped model, 512 tokens,
     * H100, reference-impls/realscale.sh input A), times 2. Measured 2026-12-06: bf16 0.524% (layers.0.mlp_out, 5335 of
     * 1048576), fp16 3.20% (attention output). fp32 has no measurement of its own and takes bf16's.
     */
    public static final double RATE_BF16 = 0.0105, RATE_FP16 = 0.064, RATE_FP32 = 0.0105;

    public static double rate(Precision p) {
        double r = switch (p) {
            case BF16 -> RATE_BF16;
            case FP16 -> RATE_FP16;
            case FP32 -> RATE_FP32;
            default -> throw new BadInputException("no tie budget for " + p.id() + ": same-precision verdicts are for bf16, fp16 and fp32");
        };
        // -Dmodeldiff.tie_rate.bfloat16=R: a rate calibrated on another input (reference-impls/realscale.sh does this).
        String o = System.getProperty("modeldiff.tie_rate." + p.id());
        return o == null ? r : Double.parseDouble(o);
    }

    /**
     * Whether a teacher forces op by op (it recorded sub-layer probes). Only then is each probe one operation, where a
     * tie moves one element; a layers-only teacher forces layer inputs, and a tie early in a layer spreads through it.
     */
    public static boolean opByOp(modeldiff.trace.Trace teacher) {
        return teacher.has("layers.0.attn_norm") || teacher.has("layers.0.q");
    }

    public static long allowedDiffering(long n, Precision p) {
        return Math.max(MIN_DIFFERING, (long) Math.ceil(rate(p) * n));
    }

    public static long allowedFar(long n, Precision p) {
        return Math.max(MIN_FAR, (long) Math.ceil(rate(p) * n / FAR_DIVISOR));
    }

    /** Decades above the budget (≤ 0 within it; 0 for bit-identical is reported as −∞ would be unhelpful, so −1). */
    public static double excess(UlpDiff d, Precision p) {
        if (d.differing() == 0) return -1;
        double over = Math.log10((double) d.differing() / allowedDiffering(d.elements(), p));
        long far = d.beyond(FAR_ULPS);
        if (far > 0) over = Math.max(over, Math.log10((double) far / allowedFar(d.elements(), p)));
        return over;
    }

    @Override
    public double excess(Precision p, String probe, double[] reference, double[] candidate, double logL2) {
        return excess(diff(reference, candidate, p), p);
    }

    /**
     * The ulp differences a verdict in precision p counts. A probe the framework kept in float32 inside a bf16/fp16 run
     * ({@link #heldInFp32}) is compared at p's resolution (both sides rounded to p): its float32 sum order is the
     * framework's (cuBLAS on a GPU), which no pass reproduces, and a 1-ulp float32 difference is far below what p can
     * tell (measured: deepseek_v3-plain's HF bf16 router logits against lowp:bf16 teacher-forced, 77 of 256 differ by
     * one float32 ulp, log-L2 −7.35), while a wrong formula moves the values by bf16 ulps.
     */
    public static UlpDiff diff(double[] reference, double[] candidate, Precision p) {
        if (!heldInFp32(reference, p)) return UlpDiff.of(reference, candidate, p);
        return UlpDiff.of(rounded(reference, p), rounded(candidate, p), p);
    }

    /** Whether a bf16/fp16 run's probe holds values that type cannot: the framework kept it in float32 (HF's sigmoid routers). */
    public static boolean heldInFp32(double[] reference, Precision p) {
        if (p != Precision.BF16 && p != Precision.FP16) return false;
        for (double v : reference) if (Double.isFinite(v) && p.round((float) v) != (float) v) return true;
        return false;
    }

    private static double[] rounded(double[] x, Precision p) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) r[i] = Double.isFinite(x[i]) ? p.round((float) x[i]) : x[i];
        return r;
    }


    @Override
    public boolean countsTies() {
        return true;
    }

    /** For charts: log-L2 of the allowed number of one-ulp flips at the tensor's RMS magnitude is not known here. */
    @Override
    public double upperBound(Precision precision, String probe) {
        rate(precision);
        return Double.NaN;
    }

    @Override
    public String describe() {
        return "teacher-forced, same precision: a probe is within the tie budget when at most max(" + MIN_DIFFERING
                + ", rate·n) elements differ and at most max(" + MIN_FAR + ", rate·n/" + (int) FAR_DIVISOR + ") by more than "
                + (int) FAR_ULPS + " ulps (rate " + RATE_BF16 + " bf16, " + RATE_FP16 + " fp16)";
    }

    @Override
    public boolean provisional() {
        return false;
    }
}
