package modeldiff.model;

/**
 * What differs between decoder layers of one model: the attention window (0 = full causal), the RoPE used (Gemma 3
 * has local and global bases) and the score multiplier (GPT-2 can scale by the inverse layer index).
 */
public record LayerSpec(int index, int slidingWindow, RopeSpec rope, double attnScale) {
    public boolean sliding() {
        return slidingWindow > 0;
    }
}
