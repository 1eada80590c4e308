package modeldiff.model;

/**
 * One RoPE configuration after normalisation (v4 {@code rope_theta}+{@code rope_scaling} and v5
 * {@code rope_parameters} both end up here). Fields a type does not use are NaN / null.
 * Semantics follow HF's modeling_rope_utils.py:
 * https://github.com/huggingface/transformers/blob/main/src/transformers/modeling_rope_utils.py
 */
public record RopeSpec(
        String type,                 // default | linear | dynamic | llama3 | yarn | longrope
        double theta,
        double partialRotaryFactor,
        double factor,
        double lowFreqFactor,        // llama3
        double highFreqFactor,       // llama3
        int originalMaxPositions,    // llama3, yarn, longrope, dynamic (0 = use max_position_embeddings)
        double betaFast,             // yarn
        double betaSlow,             // yarn
        double mscale,               // yarn
        double mscaleAllDim,         // yarn
        double attentionFactor,      // yarn, longrope (NaN = derive)
        boolean truncate,            // yarn
        double[] shortFactor,        // longrope
        double[] longFactor,         // longrope
        int maxPositionEmbeddings) {

    public static RopeSpec plain(double theta, double partial, int maxPositions) {
        return new RopeSpec("default", theta, partial, Double.NaN, Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN,
                Double.NaN, Double.NaN, Double.NaN, true, null, null, maxPositions);
    }

    public RopeSpec withTheta(double newTheta) {
        return new RopeSpec(type, newTheta, partialRotaryFactor, factor, lowFreqFactor, highFreqFactor, originalMaxPositions,
                betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, truncate, shortFactor, longFactor, maxPositionEmbeddings);
    }

    public RopeSpec withPartial(double newPartial) {
        return new RopeSpec(type, theta, newPartial, factor, lowFreqFactor, highFreqFactor, originalMaxPositions,
                betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, truncate, shortFactor, longFactor, maxPositionEmbeddings);
    }

    /** LongRoPE with one factor set whatever the length (the rope.longrope_factors fix). */
    public RopeSpec withLongropeFactors(boolean useLong) {
        double[] f = useLong ? longFactor : shortFactor;
        return new RopeSpec(type, theta, partialRotaryFactor, factor, lowFreqFactor, highFreqFactor, originalMaxPositions,
                betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, truncate, f, f, maxPositionEmbeddings);
    }

    /** YaRN with its correction range truncated to integers (floor/ceil) or not. */
    public RopeSpec withTruncate(boolean newTruncate) {
        return new RopeSpec(type, theta, partialRotaryFactor, factor, lowFreqFactor, highFreqFactor, originalMaxPositions,
                betaFast, betaSlow, mscale, mscaleAllDim, attentionFactor, newTruncate, shortFactor, longFactor, maxPositionEmbeddings);
    }

    /** An explicit attention factor (cos/sin multiplier); 1 drops YaRN's mscale. */
    public RopeSpec withAttentionFactor(double newFactor) {
        return new RopeSpec(type, theta, partialRotaryFactor, factor, lowFreqFactor, highFreqFactor, originalMaxPositions,
                betaFast, betaSlow, mscale, mscaleAllDim, newFactor, truncate, shortFactor, longFactor, maxPositionEmbeddings);
    }

    /** The same base and rotary fraction with no scaling: what a framework that ignores rope_scaling computes. */
    public RopeSpec unscaled() {
        return plain(theta, partialRotaryFactor, maxPositionEmbeddings);
    }

    /**
     * The pre-training context the scaling types measure against: original_max_position_embeddings, else (as HF
     * falls back) max_position_embeddings. Config interpretation, shared by every pass; the formulas are not.
     */
    public int originalMax() {
        return originalMaxPositions > 0 ? originalMaxPositions : maxPositionEmbeddings;
    }

    /** The scaling factor; absent from the config, max_position_embeddings / the original context (HF's default). */
    public double effectiveFactor() {
        return Double.isNaN(factor) ? (double) maxPositionEmbeddings / originalMax() : factor;
    }

    public String describe() {
        StringBuilder sb = new StringBuilder(type).append("(theta=").append(theta);
        if (partialRotaryFactor != 1.0) sb.append(", partial=").append(partialRotaryFactor);
        if (!Double.isNaN(factor)) sb.append(", factor=").append(factor);
        if (originalMaxPositions > 0) sb.append(", original_max=").append(originalMaxPositions);
        return sb.append(')').toString();
    }
}
