package modeldiff.forward.kernel;

import java.util.Arrays;

/**
 * y = x·Wᵀ (+ b) in float64 for x [rows, k] and W [n, k], W supplied tile by tile by a {@link PanelSource}.
 * <p>
 * Every y element is one chain of fused multiply-adds over k in ascending order from +0.0, then + b: the same chain
 * whatever the blocking, the thread count or the kernel (vector or scalar), so the result is bit-identical for any
 * of them. Work is split over blocks of {@link #NB} outputs; each task packs its block of W in slices of {@link #KC}
 * inputs (decoding the stored dtype as it packs) and runs the {@link PanelKernel} over all rows of x for each panel,
 * so one decoded weight is read from cache once per row block instead of being decoded again per row.
 */
public final class Gemm {
    /** Outputs per task: 4 panels. */
    public static final int NB = 4 * PanelKernel.NR;
    /** Inputs per packed slice: a panel slice (16 × 512 doubles = 64 KiB) stays in L2 while every row block uses it. */
    public static final int KC = 512;

    private static final ThreadLocal<double[][]> SCRATCH = ThreadLocal.withInitial(() -> new double[2][]);

    private Gemm() {
    }

    public static void multiply(double[] x, int rows, int k, PanelSource w, int n, double[] bias, double[] y, Parallel par) {
        multiply(x, rows, k, w, n, bias, y, par, PanelKernel.best());
    }

    /** y [rows, n] row-major (overwritten); bias null or [n]. */
    public static void multiply(double[] x, int rows, int k, PanelSource w, int n, double[] bias, double[] y, Parallel par,
                                PanelKernel kernel) {
        if (x.length < (long) rows * k || y.length < (long) rows * n)
            throw new IllegalArgumentException("x or y too small for [" + rows + ", " + k + "] x [" + n + ", " + k + "]");
        int tasks = (n + NB - 1) / NB;
        par.forEach(tasks, t -> block(x, rows, k, w, n, bias, y, t * NB, Math.min(NB, n - t * NB), kernel));
    }

    private static void block(double[] x, int rows, int k, PanelSource w, int n, double[] bias, double[] y, int o0, int nb,
                              PanelKernel kernel) {
        int nr = PanelKernel.NR;
        int panels = (nb + nr - 1) / nr;
        int ldc = panels * nr;
        int kcMax = Math.min(KC, k);
        double[][] s = SCRATCH.get();
        if (s[0] == null || s[0].length < panels * nr * kcMax) s[0] = new double[NB * Math.max(kcMax, KC)];
        if (s[1] == null || s[1].length < rows * ldc) s[1] = new double[rows * NB];
        double[] packed = s[0], c = s[1];
        Arrays.fill(c, 0, rows * ldc, 0.0);
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = Math.min(KC, k - k0);
            w.pack(o0, nb, k0, kc, packed);
            for (int p = 0; p < panels; p++)
                kernel.multiply(rows, x, k0, k, packed, p * kc * nr, kc, c, p * nr, ldc);
        }
        for (int r = 0; r < rows; r++) {
            int cy = r * ldc, yo = r * n + o0;
            if (bias == null) System.arraycopy(c, cy, y, yo, nb);
            else for (int j = 0; j < nb; j++) y[yo + j] = c[cy + j] + bias[o0 + j];
        }
    }
}
