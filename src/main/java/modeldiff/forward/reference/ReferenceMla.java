package modeldiff.forward.reference;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.Recorder;
import modeldiff.forward.kernel.Parallel;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.MlaSpec;
import modeldiff.model.MlaWeights;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Precision;
import modeldiff.numeric.Rope;

/**
 * Multi-head latent attention (DeepSeek-V3) in float64, from the formulas of modeling_deepseek_v3.py
 * (DeepseekV3Attention.forward):
 * <pre>
 *   q      = q_b(rms(q_a(x)))            or q_proj(x)                        [T, heads, nope + rope]
 *   c, kpe = split(kv_a_proj_with_mqa(x), [kv_lora, rope])
 *   k_nope, v = split(kv_b(rms(c)), per head [nope, v_head_dim])
 *   q_rot, kpe = RoPE(q[..., nope:]), RoPE(kpe)        (kpe: one head shared by all)
 *   q = cat(q_nope, q_rot), k = cat(k_nope, kpe)        per head, qk_head_dim wide
 * </pre>
 * With rope_interleave, HF's apply_rotary_pos_emb_interleave first de-interleaves each rope part (pairs (2j, 2j+1)
 * become (j, j + rope/2)) and then applies rotate_half: its output, and so our q/k probes, are in the halves layout.
 * The latent norms use eps 1e-6 (DeepseekV3RMSNorm's default; HF does not pass rms_norm_eps to them; norm.eps=V
 * overrides it as it does every norm's).
 * Probes: q and k [T, heads·qk_head_dim] after RoPE, v [T, heads·v_head_dim], attn [T, heads·v_head_dim].
 */
final class ReferenceMla {
    private ReferenceMla() {
    }

    /** What one layer's MLA needs besides its input. */
    record Setup(MlaWeights w, ModelConfig c, LayerSpec spec, ForwardInput input, Fixes fixes, Parallel par) {
    }

    /** The attention output [T, heads·v_head_dim] (the "attn" probe, before o_proj), recording q, k, v and attn. */
    static double[] attention(Recorder rec, String p, double[] a, int T, Setup s) {
        ModelConfig c = s.c();
        MlaSpec m = c.mla;
        MlaWeights w = s.w();
        int heads = c.numHeads, nope = m.qkNopeHeadDim(), rope = m.qkRopeHeadDim(), qk = m.qkHeadDim();
        double eps = s.fixes().latentNormEps();
        double[] qIn = a;
        if (m.qLora())
            qIn = ReferencePass.norm(ReferencePass.linear(a, T, w.qA(), s.par()), T, m.qLoraRank(), w.qANorm(), Family.NormKind.RMS, eps);
        double[] qNope = ReferencePass.linear(qIn, T, w.qNope(), s.par());     // [T, heads*nope]
        double[] qRope = ReferencePass.linear(qIn, T, w.qRope(), s.par());     // [T, heads*rope]
        double[] latent = ReferencePass.norm(ReferencePass.linear(a, T, w.kvA(), s.par()), T, m.kvLoraRank(), w.kvANorm(),
                Family.NormKind.RMS, eps);                                      // [T, kv_lora]
        double[] kPe = ReferencePass.linear(a, T, w.kPe(), s.par());           // [T, rope], one head
        double[] kNope = ReferencePass.linear(latent, T, w.kNope(), s.par());  // [T, heads*nope]
        double[] v = ReferencePass.linear(latent, T, w.v(), s.par());          // [T, heads*v_hd]

        RopeSpec r = s.fixes().layerRope(s.spec(), c);
        if (r != null) {
            Rope.Frequencies freq = RopeFormulas.frequencies(r, rope, s.input().positionOffset() + T);
            rotate(qRope, T, heads, rope, freq, m.ropeInterleave(), s);
            rotate(kPe, T, 1, rope, freq, m.ropeInterleave(), s);
        }
        double[] q = new double[T * heads * qk], k = new double[T * heads * qk];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++) {
                int o = (t * heads + h) * qk;
                System.arraycopy(qNope, (t * heads + h) * nope, q, o, nope);
                System.arraycopy(qRope, (t * heads + h) * rope, q, o + nope, rope);
                System.arraycopy(kNope, (t * heads + h) * nope, k, o, nope);
                System.arraycopy(kPe, t * rope, k, o + nope, rope);
            }
        q = rec.put(p + "q", heads * qk, q);
        k = rec.put(p + "k", heads * qk, k);
        v = rec.put(p + "v", m.vDim(heads), v);
        var dims = new ReferencePass.HeadDims(heads, heads, qk, m.vHeadDim());
        return rec.put(p + "attn", m.vDim(heads), ReferencePass.attention(q, k, v, T, dims, s.fixes().window(s.spec()),
                s.fixes().mlaScale(s.spec(), c), s.fixes().attnSoftcap(c), null, s.par()));
    }

    /**
     * RoPE on each head's rope part, in place, leaving it in the halves layout: out[j] = x1·cos − x2·sin,
     * out[j + half] = x2·cos + x1·sin, where (x1, x2) = (x[2j], x[2j+1]) with rope_interleave, else (x[j], x[j + half]).
     */
    private static void rotate(double[] x, int T, int heads, int dim, Rope.Frequencies freq, boolean interleave, Setup s) {
        int half = dim / 2;
        double[] tmp = new double[dim];
        for (int t = 0; t < T; t++) {
            double pos = s.input().position(t);
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * dim;
                for (int j = 0; j < half; j++) {
                    double inv = freq.invFreq()[j];
                    double angle = s.fixes().ropeBf16Angles ? Precision.BF16.round(pos) * Precision.BF16.round(inv) : pos * inv;
                    double cos = Math.cos(angle) * freq.attentionScaling(), sin = Math.sin(angle) * freq.attentionScaling();
                    double x1 = interleave ? x[base + 2 * j] : x[base + j];
                    double x2 = interleave ? x[base + 2 * j + 1] : x[base + j + half];
                    tmp[j] = x1 * cos - x2 * sin;
                    tmp[j + half] = x2 * cos + x1 * sin;
                }
                System.arraycopy(tmp, 0, x, base, dim);
            }
        }
    }
}
