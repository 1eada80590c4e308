package modeldiff.compare;

/**
 * Error metrics between a reference tensor r and a candidate c of the same shape [rows, cols]. Definitions
 * (docs/metrics.md): log-L2 = log10(‖c−r‖₂ / ‖r‖₂) = ½·log10(NMSE) = −SQNR/20; NMSE = ‖c−r‖² / ‖r‖².
 * NaN/Inf in the candidate are counted, never averaged into the norms: a tensor with one NaN is a failure on its own.
 */
public final class Metrics {
    /** log-L2 is clamped here: below float64's resolution the number means "identical". */
    public static final double LOG_L2_FLOOR = -20;

    private Metrics() {
    }

    public record ProbeMetrics(double logL2, double nmse, double maxAbs, double cosine, long nonFinite,
                               double[] perTokenLogL2, long identical, long elements) {
        public double identicalFraction() {
            return elements == 0 ? 1 : (double) identical / elements;
        }
    }

    public static double logL2(double[] ref, double[] cand) {
        return compare(ref, cand, 1, ref.length).logL2();
    }

    public static ProbeMetrics compare(double[] ref, double[] cand, int rows, int cols) {
        if (ref.length != cand.length || ref.length != (long) rows * cols)
            throw new IllegalArgumentException("shape mismatch: " + ref.length + " vs " + cand.length);
        double diff2 = 0, ref2 = 0, cand2 = 0, dot = 0, maxAbs = 0;
        long nonFinite = 0, identical = 0;
        double[] perToken = new double[rows];
        for (int r = 0; r < rows; r++) {
            double td = 0, tr = 0;
            for (int j = 0; j < cols; j++) {
                int i = r * cols + j;
                double a = ref[i], b = cand[i];
                if (!Double.isFinite(b)) {
                    nonFinite++;
                    continue;
                }
                if (a == b) identical++;
                double d = b - a;
                td += d * d;
                tr += a * a;
                cand2 += b * b;
                dot += a * b;
                maxAbs = Math.max(maxAbs, Math.abs(d));
            }
            diff2 += td;
            ref2 += tr;
            perToken[r] = log10Ratio(td, tr);
        }
        double nmse = ref2 == 0 ? (diff2 == 0 ? 0 : Double.POSITIVE_INFINITY) : diff2 / ref2;
        double cosine = (ref2 == 0 || cand2 == 0) ? (ref2 == cand2 ? 1 : 0) : dot / Math.sqrt(ref2 * cand2);
        return new ProbeMetrics(log10Ratio(diff2, ref2), nmse, maxAbs, cosine, nonFinite, perToken, identical, ref.length);
    }

    /**
     * NaN/Inf count per row of the candidate. {@link #compare} leaves such elements out of the per-token norms, so a
     * row of NaN would otherwise look identical; callers use this to mark those tokens as failures.
     */
    public static int[] nonFinitePerRow(double[] cand, int rows, int cols) {
        int[] out = new int[rows];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                if (!Double.isFinite(cand[r * cols + j])) out[r]++;
        return out;
    }

    /** ½·log10(diff²/ref²), clamped below at {@link #LOG_L2_FLOOR}; +∞ when the reference is zero and c is not. */
    static double log10Ratio(double diff2, double ref2) {
        if (diff2 == 0) return LOG_L2_FLOOR;
        if (ref2 == 0) return Double.POSITIVE_INFINITY;
        return Math.max(LOG_L2_FLOOR, 0.5 * Math.log10(diff2 / ref2));
    }

    /** Agreement of two logit tensors [tokens, vocab], computed in float64 from log-softmax. */
    public record LogitMetrics(double klMean, double klMax, double top1Agreement, double rmsDeltaPTop) {
    }

    public static LogitMetrics logits(double[] ref, double[] cand, int tokens, int vocab) {
        double klSum = 0, klMax = 0, dpSq = 0;
        int agree = 0;
        for (int t = 0; t < tokens; t++) {
            double[] lp = logSoftmax(ref, t * vocab, vocab);
            double[] lq = logSoftmax(cand, t * vocab, vocab);
            double kl = 0;
            int argP = 0, argQ = 0;
            for (int j = 0; j < vocab; j++) {
                double p = Math.exp(lp[j]);
                if (p > 0) kl += p * (lp[j] - lq[j]);
                if (lp[j] > lp[argP]) argP = j;
                if (lq[j] > lq[argQ]) argQ = j;
            }
            if (Double.isNaN(kl)) kl = Double.POSITIVE_INFINITY;
            kl = Math.max(0, kl); // rounding can give -1e-17 for identical rows
            klSum += kl;
            klMax = Math.max(klMax, kl);
            if (argP == argQ) agree++;
            double dp = Math.exp(lq[argP]) - Math.exp(lp[argP]);
            dpSq += dp * dp;
        }
        return new LogitMetrics(klSum / tokens, klMax, (double) agree / tokens, Math.sqrt(dpSq / tokens));
    }

    static double[] logSoftmax(double[] x, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, x[off + j]);
        double sum = 0;
        for (int j = 0; j < n; j++) sum += Math.exp(x[off + j] - max);
        double lse = max + Math.log(sum);
        double[] out = new double[n];
        for (int j = 0; j < n; j++) out[j] = x[off + j] - lse;
        return out;
    }
}
