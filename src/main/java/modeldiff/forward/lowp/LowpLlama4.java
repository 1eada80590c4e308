package modeldiff.forward.lowp;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.model.LayerSpec;

/**
 * Llama 4's attention extras as HF's Llama4TextAttention rounds them in a reduced dtype (docs/precision.md, Llama 4):
 * the L2 norm in float32 from {@code x.float()}, cast back once ({@code .type_as(x)}); the temperature factor in
 * float32 from {@code cache_position.float()}, q·factor promoted to float32 and cast back once. Written apart from the
 * float64 ReferenceLlama4: they share the layer description, not the arithmetic.
 */
final class LowpLlama4 {
    private LowpLlama4() {
    }

    /** One fp32 result rounded to the pass's dtype. */
    interface ToDtype {
        float apply(float v);
    }

    /** Llama4TextL2Norm on each row of {@code dim}: x · rsqrt(mean(x²) + eps) in fp32, then one rounding. */
    static void l2Norm(float[] x, int rows, int dim, float eps, ToDtype toDtype) {
        for (int r = 0; r < rows; r++) {
            int b = r * dim;
            double sq = 0;
            for (int j = 0; j < dim; j++) sq += (double) x[b + j] * x[b + j];
            float inv = (float) (1.0 / Math.sqrt((float) ((float) (sq / dim) + eps)));
            for (int j = 0; j < dim; j++) x[b + j] = toDtype.apply(x[b + j] * inv);
        }
    }

    /** log1p(floor((pos + 1.0) / floor_scale)) · attn_scale + 1.0, each op in float32. */
    static float temperature(long pos, float attnScale, float floorScale) {
        float p = (float) pos + 1.0f;
        float fl = (float) Math.floor(p / floorScale);
        return (float) Math.log1p(fl) * attnScale + 1.0f;
    }

    /** After RoPE: L2 norm of q and k on RoPE layers, q's temperature on NoPE layers (each unless its fix drops it). */
    static void afterRope(float[] q, float[] k, int T, int heads, int kvHeads, int hd, LayerSpec.Llama4 l, ForwardInput in,
                          Fixes fixes, float eps, ToDtype toDtype) {
        if (l.l2Norm() && !fixes.qkNormOff) {
            l2Norm(q, T * heads, hd, eps, toDtype);
            l2Norm(k, T * kvHeads, hd, eps, toDtype);
        }
        if (l.tempScale() > 0 && !fixes.attnNoTemperatureTuning)
            for (int t = 0; t < T; t++) {
                float f = temperature(in.position(t), (float) l.tempScale(), (float) l.floorScale());
                for (int j = t * heads * hd; j < (t + 1) * heads * hd; j++) q[j] = toDtype.apply(q[j] * f);
            }
    }

    /** Per query, the first key of its chunk (keys at positions with the same pos // chunk), or null without chunking. */
    static int[] firstKeys(LayerSpec spec, int T, ForwardInput in, Fixes fixes) {
        if (in == null || spec.llama4() == null || spec.llama4().chunk() <= 0 || fixes.attnNoChunking) return null;
        int chunk = spec.llama4().chunk();
        int[] first = new int[T];
        long p0 = in.position(0);
        for (int t = 0; t < T; t++) {
            long p = in.position(t);
            first[t] = (int) Math.max(0, p - p % chunk - p0);
        }
        return first;
    }
}
