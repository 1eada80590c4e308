package modeldiff.forward.lowp;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.Recorder;
import modeldiff.model.LayerSpec;
import modeldiff.model.MlaSpec;
import modeldiff.model.MlaWeights;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Precision;

/**
 * Multi-head latent attention (DeepSeek-V3) rounded where HF's DeepseekV3Attention rounds in bf16 / fp16 (docs/precision.md,
 * "MLA"): every nn.Linear (q_a_proj, q_b_proj or q_proj, kv_a_proj_with_mqa, kv_b_proj) rounds its fp32 result once
 * (LINEAR); q_a_layernorm / kv_a_layernorm are the family's RMSNorm with eps 1e-6 (NORM); torch.split, view,
 * transpose, the interleave's view/transpose/reshape, expand and cat move values without rounding; RoPE rounds cos/sin
 * to the dtype and each product and the sum (ROPE, as apply_rotary_pos_emb); the eager attention then rounds as for
 * every family (ATTN_SCORES, ATTN_PROBS, ATTN_OUTPUT), with the Python-float scale qk_head_dim^-0.5 · mscale².
 * Probes as in the float64 reference (ReferenceMla): q, k [T, heads·qk_head_dim] after RoPE in HF's halves layout, v and
 * attn [T, heads·v_head_dim].
 */
final class LowpMla {
    private LowpMla() {
    }

    /** Heads of q, of k/v, the widths of a q/k and of a v head, and the score scale. */
    record HeadDims(int heads, int kvHeads, int qkDim, int vDim, double scale) {
    }

    interface LatentNorm {
        float[] apply(float[] x, int rows, int dim, NormRef ref);
    }

    interface CosSin {
        /** cos and sin per [token][dim/2], rounded as the pass's RoPE table is. */
        float[][] apply(RopeSpec spec, int dim, ForwardInput in);
    }

    interface Attention {
        float[] apply(float[] q, float[] k, float[] v, int T, HeadDims dims);
    }

    /** The pass's own operations, lent to this file so that their numerics stay in one place (LowpPass). */
    record Ops(LowpMoe.Linear linear, LatentNorm norm, CosSin cosSin, Attention attention, LowpMoe.ToDtype toDtype, Fixes fixes) {
    }

    record Setup(MlaWeights w, ModelConfig c, LayerSpec spec, ForwardInput input, Ops ops, Precision p) {
    }

    /** The attention output [T, heads·v_head_dim] (the "attn" probe), recording q, k, v and attn. */
    static float[] attention(Recorder rec, String pre, float[] a, int T, Setup s) {
        ModelConfig c = s.c();
        MlaSpec m = c.mla;
        MlaWeights w = s.w();
        Ops ops = s.ops();
        int heads = c.numHeads, nope = m.qkNopeHeadDim(), rope = m.qkRopeHeadDim(), qk = m.qkHeadDim();
        float[] qIn = a;
        if (m.qLora()) qIn = ops.norm().apply(ops.linear().apply(a, T, w.qA()), T, m.qLoraRank(), w.qANorm());
        float[] qNope = ops.linear().apply(qIn, T, w.qNope());                 // [T, heads*nope]
        float[] qRope = ops.linear().apply(qIn, T, w.qRope());                 // [T, heads*rope]
        float[] latent = ops.norm().apply(ops.linear().apply(a, T, w.kvA()), T, m.kvLoraRank(), w.kvANorm());
        float[] kPe = ops.linear().apply(a, T, w.kPe());                       // [T, rope], one head
        float[] kNope = ops.linear().apply(latent, T, w.kNope());              // [T, heads*nope]
        float[] v = ops.linear().apply(latent, T, w.v());                      // [T, heads*v_hd]

        RopeSpec r = ops.fixes().layerRope(s.spec(), c);
        if (r != null) {
            float[][] cs = ops.cosSin().apply(r, rope, s.input());
            rotate(qRope, T, heads, rope, cs, m.ropeInterleave(), ops.toDtype());
            rotate(kPe, T, 1, rope, cs, m.ropeInterleave(), ops.toDtype());
        }
        float[] q = new float[T * heads * qk], k = new float[T * heads * qk];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++) {
                int o = (t * heads + h) * qk;
                System.arraycopy(qNope, (t * heads + h) * nope, q, o, nope);
                System.arraycopy(qRope, (t * heads + h) * rope, q, o + nope, rope);
                System.arraycopy(kNope, (t * heads + h) * nope, k, o, nope);
                System.arraycopy(kPe, t * rope, k, o + nope, rope);
            }
        q = rec.put(pre + "q", heads * qk, q, s.p());
        k = rec.put(pre + "k", heads * qk, k, s.p());
        v = rec.put(pre + "v", m.vDim(heads), v, s.p());
        var dims = new HeadDims(heads, heads, qk, m.vHeadDim(), ops.fixes().mlaScale(s.spec(), c));
        return rec.put(pre + "attn", m.vDim(heads), ops.attention().apply(q, k, v, T, dims), s.p());
    }

    /**
     * HF's apply_rotary_pos_emb(_interleave) on each head's rope part, in place, in the halves layout:
     * out[j] = R(R(x1·cos) + R(−x2·sin)), out[j + half] = R(R(x2·cos) + R(x1·sin)) with (x1, x2) = (x[2j], x[2j+1])
     * under rope_interleave (the de-interleave is a view, exact), else (x[j], x[j + half]).
     */
    private static void rotate(float[] x, int T, int heads, int dim, float[][] cs, boolean interleave, LowpMoe.ToDtype r) {
        int half = dim / 2;
        float[] tmp = new float[dim];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * dim;
                for (int j = 0; j < half; j++) {
                    float cos = cs[0][t * half + j], sin = cs[1][t * half + j];
                    float x1 = interleave ? x[base + 2 * j] : x[base + j];
                    float x2 = interleave ? x[base + 2 * j + 1] : x[base + j + half];
                    tmp[j] = r.apply(r.apply(x1 * cos) + r.apply(-x2 * sin));                       // ROPE
                    tmp[j + half] = r.apply(r.apply(x2 * cos) + r.apply(x1 * sin));
                }
                System.arraycopy(tmp, 0, x, base, dim);
            }
    }
}
