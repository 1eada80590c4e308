package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;

import java.util.Locale;

/**
 * Split-K for the tensor-core GEMMs (gemm_wgmma / gemm_mma and their fp16 twins, 128×256×64 tiles): when a shape has
 * fewer output tiles than the GPU has multiprocessors (the k/v projections at 2048 tokens: 16 × 4 = 64 tiles for 132
 * SMs), the K range is cut into slices computed by separate blocks (grid z); each writes raw fp32 partial sums, and
 * {@code splitk_reduce} adds the slices in a fixed order (z = 0, 1, ...), then bias and rounding. No atomics: the
 * same shape on the same GPU gives the same bits on every run. The plan depends only on the shape and the SM count.
 *
 * <p>-Dmodeldiff.cuda.splitK=auto (default: {@link #choose}), off, or a number (that many slices wherever K allows).
 */
public record SplitK(Mode mode, int fixed) {
    public enum Mode { AUTO, OFF, FIXED }

    /** Slices of at least this many 64-wide K tiles (shorter ones spend more on the second pass than they gain). */
    static final int MIN_KT = 4;
    /** At most this many slices (the partial sums cost splits × M × N × 4 bytes). */
    static final int MAX_SPLITS = 8;

    /** How one GEMM runs: {@code splits} K slices of {@code ktPer} 64-wide tiles each (1 = no split). */
    public record Plan(int splits, int ktPer) {
        static final Plan NONE = new Plan(1, 0);
    }

    public static final SplitK AUTO = new SplitK(Mode.AUTO, 0), OFF = new SplitK(Mode.OFF, 0);

    /** The policy named by -Dmodeldiff.cuda.splitK. */
    public static SplitK fromProperty() {
        return parse(System.getProperty("modeldiff.cuda.splitK", "auto"));
    }

    /** auto, off, or a positive number of slices; anything else is an IllegalArgumentException naming the value. */
    public static SplitK parse(String v) {
        String s = v.trim().toLowerCase(Locale.ROOT);
        if (s.equals("auto")) return AUTO;
        if (s.equals("off") || s.equals("1")) return OFF;
        try {
            int n = Integer.parseInt(s);
            if (n >= 1) return new SplitK(Mode.FIXED, n);
        } catch (NumberFormatException ignored) {
            // falls through to the refusal
        }
        throw new IllegalArgumentException("modeldiff.cuda.splitK must be auto, off or a positive number, got '" + v + "'");
    }

    /** The plan for C[M, N] = A[M, K]·Wᵀ on a GPU of {@code sms} multiprocessors. */
    public Plan plan(int M, int N, int K, int sms) {
        return switch (mode) {
            case OFF -> Plan.NONE;
            case FIXED -> slices(fixed, ktiles(K));
            case AUTO -> choose(M, N, K, sms);
        };
    }

    static int ktiles(int K) {
        return (K + 63) / 64;
    }

    /**
     * Split only when the output tiles fill less than one wave of the GPU: as many slices as whole copies of the tile
     * grid fit in one wave, at most {@value #MAX_SPLITS}, each at least {@value #MIN_KT} K tiles long.
     */
    static Plan choose(int M, int N, int K, int sms) {
        long tiles = (long) ((M + 127) / 128) * ((N + 255) / 256);
        if (tiles == 0 || tiles >= sms) return Plan.NONE;
        int kt = ktiles(K);
        int s = (int) Math.min(MAX_SPLITS, sms / tiles);
        s = Math.min(s, kt / MIN_KT);
        return slices(s, kt);
    }

    /** s slices over kt tiles, each non-empty: ktPer = ⌈kt / s⌉, then s = ⌈kt / ktPer⌉. */
    static Plan slices(int s, int kt) {
        if (s <= 1 || kt <= 1) return Plan.NONE;
        int ktPer = (kt + s - 1) / s;
        int n = (kt + ktPer - 1) / ktPer;
        return n <= 1 ? Plan.NONE : new Plan(n, ktPer);
    }

    /** Per context (a split forward's slots each have their own), the scratch and its size in floats. */
    private static final java.util.Map<CudaRuntime, CUdeviceptr> scratch = new java.util.IdentityHashMap<>();
    private static final java.util.Map<CudaRuntime, Long> scratchFloats = new java.util.IdentityHashMap<>();
    private static int generation;

    /** Changes whenever the scratch buffer moves (a captured CUDA graph that used the old one is then stale). */
    static synchronized int generation() {
        return generation;
    }

    /**
     * A device buffer of at least n floats for the partial sums, shared by every GEMM of rt's context (they run one
     * after another on one stream), grown and never shrunk.
     */
    static synchronized CUdeviceptr scratch(CudaRuntime rt, long n) {
        CUdeviceptr have = scratch.get(rt);
        if (n > scratchFloats.getOrDefault(rt, 0L)) {
            if (have != null) {
                CudaRuntime.sync();
                CudaRuntime.free(have);
            }
            have = CudaRuntime.alloc(4 * n);   // in rt's context: the GEMM launching on rt made it current
            scratch.put(rt, have);
            scratchFloats.put(rt, n);
            generation++;
        }
        return have;
    }
}
