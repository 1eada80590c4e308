package modeldiff.forward.reference;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.model.LayerSpec;

/**
 * Llama 4's attention extras in float64, from modeling_llama4.py's Llama4TextAttention and the chunked mask of
 * masking_utils: the weightless L2 norm of q and k on RoPE layers (after RoPE), temperature tuning of q on NoPE
 * layers, and the chunk each query may look into. Positions are the tokens' absolute positions (HF's cache_position
 * in a cached run: hf_trace passes it, with the masks built from it, so a trace at an offset means the same).
 */
final class ReferenceLlama4 {
    private ReferenceLlama4() {
    }

    /** Llama4TextL2Norm: x · 1/sqrt(mean(x²) + eps) over each head's head_dim values, no weight. */
    static void l2Norm(double[] x, int rows, int dim, double eps) {
        for (int r = 0; r < rows; r++) {
            int b = r * dim;
            double sq = 0;
            for (int j = 0; j < dim; j++) sq += x[b + j] * x[b + j];
            double inv = 1.0 / Math.sqrt(sq / dim + eps);
            for (int j = 0; j < dim; j++) x[b + j] *= inv;
        }
    }

    /** The temperature factor at absolute position {@code pos}: log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1. */
    static double temperature(long pos, double attnScale, double floorScale) {
        return Math.log1p(Math.floor((pos + 1.0) / floorScale)) * attnScale + 1.0;
    }

    /** After RoPE: the L2 norm of q and k (RoPE layers, not with qk_norm.off), q's temperature (NoPE layers, not with attn.no_temperature_tuning). */
    static void afterRope(double[] q, double[] k, int T, int heads, int kvHeads, int hd, LayerSpec.Llama4 l, ForwardInput in,
                          Fixes fixes, double eps) {
        if (l.l2Norm() && !fixes.qkNormOff) {
            l2Norm(q, T * heads, hd, eps);
            l2Norm(k, T * kvHeads, hd, eps);
        }
        if (l.tempScale() > 0 && !fixes.attnNoTemperatureTuning)
            for (int t = 0; t < T; t++) {
                double f = temperature(in.position(t), l.tempScale(), l.floorScale());
                for (int j = t * heads * hd; j < (t + 1) * heads * hd; j++) q[j] *= f;
            }
    }

    /**
     * For each query, its first visible key under the chunked mask (key and query in the same chunk of positions:
     * pos // chunk equal; causal on top), or null when the layer is not chunked (or attn.no_chunking).
     */
    static int[] firstKeys(LayerSpec spec, int T, ForwardInput in, Fixes fixes) {
        if (spec.llama4() == null || spec.llama4().chunk() <= 0 || fixes.attnNoChunking) return null;
        long chunk = spec.llama4().chunk();
        int[] first = new int[T];
        for (int t = 0; t < T; t++) {
            long start = Math.floorDiv(in.position(t), chunk) * chunk;   // positions are contiguous: index = pos − offset
            first[t] = (int) Math.max(0, start - in.position(0));
        }
        return first;
    }
}
