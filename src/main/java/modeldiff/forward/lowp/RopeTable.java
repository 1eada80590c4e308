package modeldiff.forward.lowp;

import modeldiff.model.RopeSpec;

/**
 * inv_freq and the attention scaling as HF transformers v5 computes them on a GPU: fp32 torch ops, each rounded to
 * fp32, in the order modeling_rope_utils.py writes them (the buffer stays fp32 in a bf16 model). Written apart from
 * the reference's float64 formulas (reference.RopeFormulas) so that a formula wrong on one side shows up as a diff.
 * Used by the lowp and cuda passes.
 */
public final class RopeTable {
    private RopeTable() {
    }

    /** The table and the factor cos/sin are multiplied by (a Python float in HF). */
    public record Fp32(float[] invFreq, double attentionScaling) {
    }

    /** @param seqLen max position + 1 of this input (torch.max(position_ids) + 1) */
    public static Fp32 of(RopeSpec s, int rot, long seqLen) {
        return switch (s.type()) {
            case "default" -> new Fp32(powInverse((float) s.theta(), rot), 1.0);
            case "linear" -> {
                float[] inv = powInverse((float) s.theta(), rot);
                for (int j = 0; j < inv.length; j++) inv[j] = inv[j] / (float) s.factor();
                yield new Fp32(inv, 1.0);
            }
            case "llama3" -> new Fp32(llama3(powInverse((float) s.theta(), rot), s), 1.0);
            case "dynamic" -> new Fp32(powInverse(dynamicBase(s, rot, seqLen), rot), 1.0);
            case "yarn" -> yarn(s, rot);
            case "longrope" -> longrope(s, rot, seqLen);
            default -> throw new IllegalArgumentException("unknown rope type " + s.type());
        };
    }

    /** arange(0, dim, 2).float() / dim, in fp32. */
    private static float exponent(int j, int rot) {
        return (float) (2 * j) / rot;
    }

    /** 1.0 / (base ** exponent): fp32 pow, fp32 reciprocal. */
    private static float[] powInverse(float base, int rot) {
        float[] inv = new float[rot / 2];
        for (int j = 0; j < inv.length; j++) inv[j] = 1.0f / (float) Math.pow(base, exponent(j, rot));
        return inv;
    }

    /**
     * The NTK base as a 0-d fp32 tensor: factor · seq_len (an int64 tensor, so the product lands in fp32)
     * / max_position_embeddings − (factor − 1), ** (d / (d − 2)), times the Python-float base.
     */
    private static float dynamicBase(RopeSpec s, int rot, long seqLen) {
        long len = Math.max(seqLen, s.maxPositionEmbeddings());
        float f = (float) s.factor();
        float t = f * (float) len;
        t = t / (float) s.maxPositionEmbeddings();
        t = t - (float) (s.factor() - 1);
        t = (float) Math.pow(t, (float) (rot / (rot - 2.0)));
        return (float) s.theta() * t;
    }

    private static float[] llama3(float[] inv, RopeSpec s) {
        float factor = (float) s.factor(), low = (float) s.lowFreqFactor(), high = (float) s.highFreqFactor();
        float old = s.originalMaxPositions();
        float lowWavelen = (float) (s.originalMaxPositions() / s.lowFreqFactor());
        float highWavelen = (float) (s.originalMaxPositions() / s.highFreqFactor());
        float[] out = new float[inv.length];
        for (int j = 0; j < inv.length; j++) {
            float wavelen = (float) (2 * Math.PI) / inv[j];
            float scaled = wavelen > lowWavelen ? inv[j] / factor : inv[j];
            float smooth = (old / wavelen - low) / (high - low);
            float smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            out[j] = medium ? smoothed : scaled;
        }
        return out;
    }

    /** HF's _compute_yarn_parameters: the correction range in Python floats, the table in fp32 tensors. */
    private static Fp32 yarn(RopeSpec s, int rot) {
        double base = s.theta(), factor = s.effectiveFactor();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention)) {
            boolean both = !Double.isNaN(s.mscale()) && !Double.isNaN(s.mscaleAllDim()) && s.mscale() != 0 && s.mscaleAllDim() != 0;
            attention = both ? mscale(factor, s.mscale()) / mscale(factor, s.mscaleAllDim()) : mscale(factor, 1);
        }
        double betaFast = Double.isNaN(s.betaFast()) || s.betaFast() == 0 ? 32 : s.betaFast();
        double betaSlow = Double.isNaN(s.betaSlow()) || s.betaSlow() == 0 ? 1 : s.betaSlow();
        int om = s.originalMax();
        double low = rot * Math.log(om / (betaFast * 2 * Math.PI)) / (2 * Math.log(base));
        double high = rot * Math.log(om / (betaSlow * 2 * Math.PI)) / (2 * Math.log(base));
        if (s.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, rot - 1);
        if (low == high) high += 0.001;
        float[] inv = new float[rot / 2];
        for (int j = 0; j < inv.length; j++) {
            float posFreq = (float) Math.pow((float) base, exponent(j, rot));
            float extrapolation = 1.0f / posFreq;
            float interpolation = 1.0f / ((float) factor * posFreq);
            float ramp = ((float) j - (float) low) / (float) (high - low);
            ramp = Math.min(1f, Math.max(0f, ramp));
            float extrapolationFactor = 1f - ramp;
            inv[j] = interpolation * (1f - extrapolationFactor) + extrapolation * extrapolationFactor;
        }
        return new Fp32(inv, attention);
    }

    private static double mscale(double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
    }

    /** HF's _compute_longrope_parameters: 1.0 / (ext_factors * base ** (arange(0, dim, 2).float() / dim)). */
    private static Fp32 longrope(RopeSpec s, int rot, long seqLen) {
        int om = s.originalMax();
        double factor = s.effectiveFactor();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention)) attention = factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(om));
        double[] ext = seqLen > om ? s.longFactor() : s.shortFactor();
        float[] inv = new float[rot / 2];
        for (int j = 0; j < inv.length; j++)
            inv[j] = 1.0f / ((float) ext[j] * (float) Math.pow((float) s.theta(), exponent(j, rot)));
        return new Fp32(inv, attention);
    }
}
