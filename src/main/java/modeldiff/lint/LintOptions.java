package modeldiff.lint;

/**
 * What a lint run looks at.
 *
 * @param tokens      the token ids a run would use (input.* rules), or null to skip those rules
 * @param nonfinite   scan every tensor for NaN/Inf (streamed); false reads only headers plus the embedding / lm_head
 * @param maxListed   cap on ids / names listed in one finding's evidence (the count is always given)
 * @param chunkBytes  bytes read at once (per thread) while streaming tensors (tests make it tiny to cross chunk boundaries)
 * @param threads     worker threads for the streaming scans
 */
public record LintOptions(int[] tokens, boolean nonfinite, int maxListed, long chunkBytes, int threads) {
    public static final long DEFAULT_CHUNK_BYTES = 32L << 20;

    public LintOptions {
        if (maxListed < 1) throw new IllegalArgumentException("maxListed must be >= 1");
        if (chunkBytes < 1) throw new IllegalArgumentException("chunkBytes must be >= 1");
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1");
        tokens = tokens == null ? null : tokens.clone();
    }

    public static LintOptions defaults() {
        return new LintOptions(null, true, 32, DEFAULT_CHUNK_BYTES, Math.max(1, Runtime.getRuntime().availableProcessors()));
    }

    public LintOptions withTokens(int[] t) {
        return new LintOptions(t, nonfinite, maxListed, chunkBytes, threads);
    }

    public LintOptions withNonfinite(boolean on) {
        return new LintOptions(tokens, on, maxListed, chunkBytes, threads);
    }

    public LintOptions withChunkBytes(long bytes) {
        return new LintOptions(tokens, nonfinite, maxListed, bytes, threads);
    }
}
