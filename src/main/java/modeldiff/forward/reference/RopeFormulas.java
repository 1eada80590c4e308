package modeldiff.forward.reference;

import modeldiff.model.RopeSpec;
import modeldiff.numeric.Rope;

/**
 * Rotary-embedding frequencies in float64, written from the formulas of each rope type as HF transformers v5 defines
 * them (modeling_rope_utils.py, https://github.com/huggingface/transformers/blob/main/src/transformers/modeling_rope_utils.py).
 * Only the reference pass uses this class: the other passes build their fp32 tables their own way
 * (lowp.RopeTable, TorchPass), so a wrong formula on either side shows up as a diff between passes.
 */
public final class RopeFormulas {
    private RopeFormulas() {
    }

    /**
     * @param rotaryDim rotated dimensions per head (even)
     * @param seqLen    max position + 1 in this input (HF: torch.max(position_ids) + 1); dynamic NTK rescales its base
     *                  for it and longrope picks its factor set by it
     */
    public static Rope.Frequencies frequencies(RopeSpec spec, int rotaryDim, long seqLen) {
        double[] inv = defaultInvFreq(spec.theta(), rotaryDim);
        return switch (spec.type()) {
            case "default" -> new Rope.Frequencies(inv, 1.0);
            case "linear" -> {
                for (int i = 0; i < inv.length; i++) inv[i] /= spec.factor();
                yield new Rope.Frequencies(inv, 1.0);
            }
            case "dynamic" -> new Rope.Frequencies(defaultInvFreq(dynamicBase(spec, rotaryDim, seqLen), rotaryDim), 1.0);
            case "llama3" -> new Rope.Frequencies(llama3(inv, spec), 1.0);
            case "yarn" -> yarn(spec, rotaryDim);
            case "longrope" -> longrope(spec, rotaryDim, seqLen);
            default -> throw new IllegalArgumentException("unknown rope type " + spec.type());
        };
    }

    static double[] defaultInvFreq(double base, int rotaryDim) {
        double[] inv = new double[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / Math.pow(base, (2.0 * i) / rotaryDim);
        return inv;
    }

    /**
     * Dynamic NTK: base · (factor · L / M − (factor − 1))^(d / (d − 2)) with L = max(seqLen, M). HF v5 takes M from
     * max_position_embeddings (not original_max_position_embeddings), and recomputes at every forward whose length
     * exceeds the cached one, so the whole input uses the base of its own length.
     */
    static double dynamicBase(RopeSpec s, int dim, long seqLen) {
        double m = s.maxPositionEmbeddings();
        double len = Math.max(seqLen, m);
        return s.theta() * Math.pow(s.factor() * len / m - (s.factor() - 1), dim / (dim - 2.0));
    }

    /** Llama 3.1: long wavelengths divided by factor, short kept, a smooth blend in between. */
    private static double[] llama3(double[] inv, RopeSpec s) {
        double old = s.originalMaxPositions();
        double lowWavelen = old / s.lowFreqFactor();
        double highWavelen = old / s.highFreqFactor();
        double[] out = new double[inv.length];
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            double scaled = wavelen > lowWavelen ? inv[i] / s.factor() : inv[i];
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium) {
                double smooth = (old / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                out[i] = (1 - smooth) * scaled / s.factor() + smooth * scaled;
            } else {
                out[i] = scaled;
            }
        }
        return out;
    }

    /**
     * YaRN, Qwen2.5 and DeepSeek style: interpolation 1/(factor·b^(2i/d)) and extrapolation 1/b^(2i/d) blended by a
     * linear ramp between the correction dimensions of beta_fast and beta_slow (floored/ceiled unless truncate is
     * false); cos/sin scaled by the attention factor, which is mscale(factor, mscale)/mscale(factor, mscale_all_dim)
     * when both are set and non-zero, else mscale(factor, 1).
     */
    static Rope.Frequencies yarn(RopeSpec s, int dim) {
        double base = s.theta(), factor = s.effectiveFactor();
        int originalMax = s.originalMax();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention)) {
            boolean both = !Double.isNaN(s.mscale()) && !Double.isNaN(s.mscaleAllDim()) && s.mscale() != 0 && s.mscaleAllDim() != 0;
            attention = both ? yarnMscale(factor, s.mscale()) / yarnMscale(factor, s.mscaleAllDim()) : yarnMscale(factor, 1.0);
        }
        double betaFast = Double.isNaN(s.betaFast()) || s.betaFast() == 0 ? 32 : s.betaFast();
        double betaSlow = Double.isNaN(s.betaSlow()) || s.betaSlow() == 0 ? 1 : s.betaSlow();
        double low = correctionDim(betaFast, dim, base, originalMax);
        double high = correctionDim(betaSlow, dim, base, originalMax);
        if (s.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) high += 0.001; // HF: "prevent singularity"
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            double posFreq = Math.pow(base, (2.0 * i) / dim);
            double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
            double extrapolationWeight = 1 - ramp;
            inv[i] = (1 / (factor * posFreq)) * ramp + (1 / posFreq) * extrapolationWeight;
        }
        return new Rope.Frequencies(inv, attention);
    }

    static double yarnMscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return (dim * Math.log(maxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
    }

    /**
     * LongRoPE (Phi-3.5, Phi-4): 1/(ext_i · b^(2i/d)) with ext the long factors when the input's length exceeds
     * original_max_position_embeddings, else the short ones; cos/sin scaled by sqrt(1 + ln f / ln original).
     */
    static Rope.Frequencies longrope(RopeSpec s, int dim, long seqLen) {
        int originalMax = s.originalMax();
        double factor = s.effectiveFactor();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention)) attention = factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax));
        double[] ext = seqLen > originalMax ? s.longFactor() : s.shortFactor();
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / (ext[i] * Math.pow(s.theta(), (2.0 * i) / dim));
        return new Rope.Frequencies(inv, attention);
    }
}
