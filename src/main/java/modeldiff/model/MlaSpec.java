package modeldiff.model;

/**
 * Multi-head latent attention (DeepSeek-V2/V3, modeling_deepseek_v3.py DeepseekV3Attention) as a config describes it:
 * q from a low-rank q_a_proj → q_a_layernorm → q_b_proj (or a plain q_proj when q_lora_rank is null); k and v from
 * kv_a_proj_with_mqa, whose output is the compressed kv (kv_lora_rank, normed by kv_a_layernorm, expanded per head by
 * kv_b_proj into k_nope and v) and one rope part k_pe shared by every head. Each q/k head is cat(nope, rope)
 * (qk_head_dim = nope + rope); v heads are v_head_dim wide. Immutable.
 * <p>
 * Source: https://github.com/huggingface/transformers/blob/main/src/transformers/models/deepseek_v3/modeling_deepseek_v3.py
 */
public record MlaSpec(int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim,
                      boolean ropeInterleave) {

    /**
     * The eps of q_a_layernorm and kv_a_layernorm: HF builds them as DeepseekV3RMSNorm(rank) with the class default
     * 1e-6, not the config's rms_norm_eps.
     */
    public static final double LATENT_NORM_EPS = 1e-6;

    /** Whether q goes through the low-rank q_a_proj / q_b_proj pair (q_lora_rank not null). */
    public boolean qLora() {
        return qLoraRank > 0;
    }

    public int qkHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    /**
     * HF's softmax scale: qk_head_dim^-0.5, times mscale² where mscale = 0.1 · mscale_all_dim · ln(factor) + 1 when the
     * RoPE is scaled (rope_type not "default"), mscale_all_dim is set and non-zero and factor > 1 (yarn_get_mscale).
     * {@code rope} is the RoPE the layer applies (null: none); {@code dropMscale} is the attn.no_yarn_mscale bug
     * (transformers#47435: the mscale² factor missing from the softmax scale).
     */
    public double scoreScale(RopeSpec rope, boolean dropMscale) {
        double scale = 1.0 / Math.sqrt(qkHeadDim());
        if (dropMscale || rope == null || rope.type().equals("default")) return scale;
        double all = rope.mscaleAllDim(), factor = rope.factor();
        if (Double.isNaN(all) || all == 0 || Double.isNaN(factor) || factor <= 1) return scale;
        double m = 0.1 * all * Math.log(factor) + 1.0;
        return scale * m * m;
    }

    /** Width of the q and k probes: every head's cat(nope, rope). */
    public int qkDim(int heads) {
        return heads * qkHeadDim();
    }

    /** Width of the v and attn probes. */
    public int vDim(int heads) {
        return heads * vHeadDim;
    }

    @Override
    public String toString() {
        return "MLA q_lora " + (qLora() ? qLoraRank : "none") + ", kv_lora " + kvLoraRank + ", nope " + qkNopeHeadDim
                + ", rope " + qkRopeHeadDim + ", v " + vHeadDim + (ropeInterleave ? ", interleaved rope" : "");
    }
}
