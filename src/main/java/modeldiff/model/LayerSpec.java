package modeldiff.model;

/**
 * What differs between decoder layers of one model: the attention window (0 = full causal), the RoPE used (Gemma 3
 * has local and global bases), the score multiplier (GPT-2 can scale by the inverse layer index) and whether the
 * layer skips RoPE (SmolLM3's NoPE layers; {@code rope} is still the model's spec, so a fix can turn it back on).
 */
public record LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale, boolean nope) {
    public LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale) {
        this(index, slidingWindow, rope, attnScale, false);
    }

    public boolean sliding() {
        return slidingWindow > 0;
    }
}
