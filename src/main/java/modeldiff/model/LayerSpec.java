package modeldiff.model;

/**
 * What differs between decoder layers of one model: the attention window (0 = full causal), the RoPE used (Gemma 3
 * has local and global bases), the score multiplier (GPT-2 can scale by the inverse layer index), whether the
 * layer skips RoPE (SmolLM3's and Llama 4's NoPE layers; {@code rope} is still the model's spec, so a fix can turn it
 * back on) and Llama 4's per-layer attention extras (null for other families).
 */
public record LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale, boolean nope, Llama4 llama4) {
    public LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale) {
        this(index, slidingWindow, rope, attnScale, false, null);
    }

    public LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale, boolean nope) {
        this(index, slidingWindow, rope, attnScale, nope, null);
    }

    /**
     * Llama 4's attention on one layer (Llama4TextAttention, create_chunked_causal_mask): {@code chunk} > 0 lets a
     * query see only keys of its own chunk of positions (pos // chunk equal; layer type chunked_attention);
     * {@code l2Norm}: q and k L2-normalised per head after RoPE (use_qk_norm on a RoPE layer);
     * {@code tempScale} > 0: q multiplied by log1p(floor((pos + 1) / floorScale)) · tempScale + 1 (attn_scale, on a
     * NoPE layer with attn_temperature_tuning).
     */
    public record Llama4(int chunk, boolean l2Norm, double tempScale, double floorScale) {
    }

    public boolean sliding() {
        return slidingWindow > 0;
    }
}
