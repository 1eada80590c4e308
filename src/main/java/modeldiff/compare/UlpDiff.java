package modeldiff.compare;

import modeldiff.numeric.Precision;

import java.util.Locale;

/**
 * How two tensors of the same dtype differ, counted the way rounding ties behave: how many elements differ at all,
 * and by how many units in the last place (ulps) of that dtype. A tie (a value within an fp32 ulp of a rounding
 * midpoint that another kernel rounds the other way) moves one element by one ulp; a bug moves many elements, or moves
 * them by many ulps.
 *
 * @param elements  elements compared
 * @param differing elements whose values differ (a NaN/Inf on one side counts as differing, in the last bin)
 * @param histogram counts of differing elements by distance, bins {@link #BINS}
 */
public record UlpDiff(long elements, long differing, long[] histogram) {
    /** Upper edges of the bins in ulps (inclusive): 1, 2, 3–4, 5–8, 9–16, 17–64, then beyond 64 or non-finite. */
    public static final double[] EDGES = {1, 2, 4, 8, 16, 64};
    public static final String[] BINS = {"1", "2", "3-4", "5-8", "9-16", "17-64", ">64"};

    /**
     * @param target    values of the target (dtype-representable, stored wider)
     * @param candidate values of the candidate, same length
     */
    public static UlpDiff of(double[] target, double[] candidate, Precision p) {
        if (target.length != candidate.length) throw new IllegalArgumentException("lengths differ");
        double small = rms(target) / SMALL;
        long[] h = new long[BINS.length];
        long diff = 0;
        for (int i = 0; i < target.length; i++) {
            double a = target[i], b = candidate[i];
            if (a == b || (Double.isNaN(a) && Double.isNaN(b))) continue;
            diff++;
            h[bin(ulps(a, b, p, small))]++;
        }
        return new UlpDiff(target.length, diff, h);
    }

    /**
     * Elements smaller than the tensor's RMS / SMALL have their distance counted in ulps at that magnitude: a tiny
     * result of a cancellation (GELU's 1 + erf(x) at x = −5, where CUDA's erff is 2 ulps off) can be many of its own
     * ulps away after a tie without being far from anything that matters.
     */
    public static final double SMALL = 16;

    /**
     * |a − b| in ulps of precision p at the larger magnitude of the two, or {@code atLeast} when that is larger
     * (infinite for non-finite values).
     */
    public static double ulps(double a, double b, Precision p, double atLeast) {
        if (!Double.isFinite(a) || !Double.isFinite(b)) return Double.POSITIVE_INFINITY;
        return Math.abs(a - b) / ulp(Math.max(atLeast, Math.max(Math.abs(a), Math.abs(b))), p);
    }

    private static double rms(double[] x) {
        double sq = 0;
        long n = 0;
        for (double v : x)
            if (Double.isFinite(v)) {
                sq += v * v;
                n++;
            }
        return n == 0 ? 0 : Math.sqrt(sq / n);
    }

    /** The spacing of precision p's values at magnitude x (subnormal spacing below the smallest normal). */
    public static double ulp(double x, Precision p) {
        int mantissa, minExp;
        switch (p) {
            case BF16 -> { mantissa = 7; minExp = -126; }
            case FP16 -> { mantissa = 10; minExp = -14; }
            case FP32 -> { mantissa = 23; minExp = -126; }
            default -> { mantissa = 52; minExp = -1022; }
        }
        int e = x == 0 ? minExp : Math.max(Math.getExponent(x), minExp);
        return Math.scalb(1.0, e - mantissa);
    }

    private static int bin(double ulps) {
        for (int i = 0; i < EDGES.length; i++) if (ulps <= EDGES[i] * (1 + 1e-9)) return i;
        return EDGES.length;
    }

    public double fractionDiffering() {
        return elements == 0 ? 0 : (double) differing / elements;
    }

    /** Differing elements more than {@code ulps} apart (by bin: counts bins whose lower edge is above it). */
    public long beyond(double ulps) {
        long n = 0;
        for (int i = 0; i < histogram.length; i++) {
            double lower = i == 0 ? 0 : EDGES[i - 1];
            if (lower >= ulps) n += histogram[i];
        }
        return n;
    }

    public String describe() {
        if (differing == 0) return "bit-identical";
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%d of %d differ (%.3f%%):", differing, elements,
                100.0 * fractionDiffering()));
        for (int i = 0; i < histogram.length; i++) if (histogram[i] > 0) sb.append(' ').append(BINS[i]).append("ulp×").append(histogram[i]);
        return sb.toString();
    }
}
