package modeldiff.forward.kernel;

/**
 * The B operand of {@link Gemm}: a logical [n outputs, k inputs] matrix (PyTorch's nn.Linear weight layout) that hands
 * out packed tiles on request, so that no caller ever holds the whole matrix widened to float64.
 */
public interface PanelSource extends AutoCloseable {
    /**
     * Writes outputs [o0, o0 + n) × inputs [k0, k0 + kc) into {@code dst} as panels of {@link PanelKernel#NR} outputs:
     * output o0 + j, input k0 + k goes to {@code dst[((j / NR) · kc + k) · NR + j % NR]}. Outputs of the last panel
     * beyond n are written as zeros.
     */
    void pack(int o0, int n, int k0, int kc, double[] dst);

    /** Releases what the source holds (mappings); the default holds nothing. */
    @Override
    default void close() {
    }

    /** Zeros for outputs [n, panels·NR) of the last panel (their products are computed and thrown away). */
    static void zeroPad(int n, int kc, double[] dst) {
        int nr = PanelKernel.NR;
        int padded = (n + nr - 1) / nr * nr;
        for (int j = n; j < padded; j++) {
            int base = (j / nr) * kc * nr + j % nr;
            for (int k = 0; k < kc; k++) dst[base + k * nr] = 0.0;
        }
    }

    /** A float64 row-major [n, k] array (stride {@code ld} between rows), e.g. an activation used as the B operand. */
    static PanelSource ofRows(double[] m, int offset, int ld) {
        return (o0, n, k0, kc, dst) -> {
            int nr = PanelKernel.NR;
            for (int j = 0; j < n; j++) {
                int src = offset + (o0 + j) * ld + k0;
                int d = (j / nr) * kc * nr + j % nr;
                for (int k = 0; k < kc; k++) dst[d + k * nr] = m[src + k];
            }
            zeroPad(n, kc, dst);
        };
    }

    /** A float64 array holding the transposed matrix: element (o, k) at {@code offset + k·ld + o}. */
    static PanelSource ofColumns(double[] m, int offset, int ld) {
        return (o0, n, k0, kc, dst) -> {
            int nr = PanelKernel.NR;
            for (int k = 0; k < kc; k++) {
                int src = offset + (k0 + k) * ld + o0;
                for (int j = 0; j < n; j++) dst[((j / nr) * kc + k) * nr + j % nr] = m[src + j];
            }
            zeroPad(n, kc, dst);
        };
    }
}
