package modeldiff.numeric;

import modeldiff.model.RopeSpec;

/**
 * Rotary-embedding frequencies in float64, straight from the formulas of each rope type (the same formulas HF's
 * modeling_rope_utils.py implements, there in float32).
 */
public final class Rope {
    private Rope() {
    }

    /** Inverse frequencies and the factor cos/sin are multiplied by ("attention scaling": yarn, longrope). */
    public record Frequencies(double[] invFreq, double attentionScaling) {
    }

    /** Number of leading head dimensions rotated: int(head_dim · partial_rotary_factor), as HF truncates. */
    public static int rotaryDim(int headDim, double partialFactor) {
        return (int) (headDim * partialFactor);
    }

    /**
     * @param rotaryDim  rotated dimensions per head (even)
     * @param seqLen     max position + 1 in this input; dynamic NTK and longrope switch behaviour on it
     */
    public static Frequencies frequencies(RopeSpec spec, int rotaryDim, long seqLen) {
        int half = rotaryDim / 2;
        double base = spec.theta();
        double[] inv = defaultInvFreq(base, rotaryDim);
        switch (spec.type()) {
            case "default":
                return new Frequencies(inv, 1.0);
            case "linear":
                for (int i = 0; i < half; i++) inv[i] /= spec.factor();
                return new Frequencies(inv, 1.0);
            case "dynamic": {
                int originalMax = spec.originalMaxPositions() > 0 ? spec.originalMaxPositions() : spec.maxPositionEmbeddings();
                if (seqLen > originalMax) {
                    double f = spec.factor();
                    double scaledBase = base * Math.pow(f * seqLen / originalMax - (f - 1), rotaryDim / (rotaryDim - 2.0));
                    inv = defaultInvFreq(scaledBase, rotaryDim);
                }
                return new Frequencies(inv, 1.0);
            }
            case "llama3":
                return new Frequencies(llama3(inv, spec), 1.0);
            case "yarn":
                return yarn(spec, rotaryDim);
            case "longrope":
                return longrope(spec, rotaryDim, seqLen);
            default:
                throw new IllegalArgumentException("unknown rope type " + spec.type());
        }
    }

    static double[] defaultInvFreq(double base, int rotaryDim) {
        double[] inv = new double[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / Math.pow(base, (2.0 * i) / rotaryDim);
        return inv;
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

    private static Frequencies yarn(RopeSpec s, int dim) {
        double base = s.theta(), factor = s.factor();
        int originalMax = s.originalMaxPositions() > 0 ? s.originalMaxPositions() : s.maxPositionEmbeddings();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention)) {
            if (!Double.isNaN(s.mscale()) && !Double.isNaN(s.mscaleAllDim()) && s.mscale() != 0 && s.mscaleAllDim() != 0)
                attention = yarnMscale(factor, s.mscale()) / yarnMscale(factor, s.mscaleAllDim());
            else
                attention = yarnMscale(factor, 1.0);
        }
        double betaFast = Double.isNaN(s.betaFast()) ? 32 : s.betaFast();
        double betaSlow = Double.isNaN(s.betaSlow()) ? 1 : s.betaSlow();
        double low = correctionDim(betaFast, dim, base, originalMax);
        double high = correctionDim(betaSlow, dim, base, originalMax);
        if (s.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) high += 0.001; // avoids a zero-width ramp, as HF does
        int half = dim / 2;
        double[] inv = new double[half];
        for (int i = 0; i < half; i++) {
            double posFreq = Math.pow(base, (2.0 * i) / dim);
            double extrapolation = 1.0 / posFreq;
            double interpolation = 1.0 / (factor * posFreq);
            double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
            double extrapolationWeight = 1 - ramp;
            inv[i] = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
        }
        return new Frequencies(inv, attention);
    }

    private static double yarnMscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return (dim * Math.log(maxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
    }

    /** Phi-3 LongRoPE: per-dimension rescale factors, the long set once the input passes the original context. */
    private static Frequencies longrope(RopeSpec s, int dim, long seqLen) {
        int originalMax = s.originalMaxPositions() > 0 ? s.originalMaxPositions() : s.maxPositionEmbeddings();
        double factor = s.originalMaxPositions() > 0 ? (double) s.maxPositionEmbeddings() / originalMax : s.factor();
        double attention = s.attentionFactor();
        if (Double.isNaN(attention))
            attention = (Double.isNaN(factor) || factor <= 1) ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax));
        double[] ext = seqLen > originalMax ? s.longFactor() : s.shortFactor();
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1.0 / (ext[i] * Math.pow(s.theta(), (2.0 * i) / dim));
        return new Frequencies(inv, attention);
    }

    /**
     * inv_freq as HF computes it at init, in fp32: 1 / base ** (arange(0, dim, 2).float() / dim), then the rope type's
     * adjustments in fp32. Types other than default/linear/llama3 take the float64 formula rounded to fp32. This is the
     * table a GPU framework starts from (the buffer is fp32 even in a bf16 model), so the reduced-precision passes
     * share it.
     */
    public static float[] invFreqFp32(RopeSpec spec, int rot, long seqLen) {
        int half = rot / 2;
        float[] inv = new float[half];
        float base = (float) spec.theta();
        switch (spec.type()) {
            case "default", "linear", "llama3" -> {
                for (int j = 0; j < half; j++) {
                    float e = (float) (2 * j) / rot;
                    inv[j] = 1.0f / (float) Math.pow(base, e);
                }
                if (spec.type().equals("linear")) for (int j = 0; j < half; j++) inv[j] = inv[j] / (float) spec.factor();
                if (spec.type().equals("llama3")) llama3(inv, spec);
            }
            default -> {
                double[] d = frequencies(spec, rot, seqLen).invFreq();
                for (int j = 0; j < half; j++) inv[j] = (float) d[j];
            }
        }
        return inv;
    }

    private static void llama3(float[] inv, RopeSpec s) {
        float factor = (float) s.factor(), low = (float) s.lowFreqFactor(), high = (float) s.highFreqFactor();
        float old = s.originalMaxPositions();
        float lowWavelen = (float) (s.originalMaxPositions() / s.lowFreqFactor());
        float highWavelen = (float) (s.originalMaxPositions() / s.highFreqFactor());
        for (int j = 0; j < inv.length; j++) {
            float wavelen = (float) (2 * Math.PI) / inv[j];
            float scaled = wavelen > lowWavelen ? inv[j] / factor : inv[j];
            float smooth = (old / wavelen - low) / (high - low);
            float smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            inv[j] = medium ? smoothed : scaled;
        }
    }

}
