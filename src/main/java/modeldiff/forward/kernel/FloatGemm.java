package modeldiff.forward.kernel;

import java.util.Arrays;

/**
 * y = x·Wᵀ as running fp32 sums ({@link FloatChainKernel}), for x [rows, k] float32 and W from a {@link PanelSource}
 * whose values are float32-representable (lowp's weights). Same blocking and task split as {@link Gemm}; each element
 * is one chain in ascending k from +0, so the bits do not depend on threads or kernel.
 */
public final class FloatGemm {
    private static final ThreadLocal<Object[]> SCRATCH = ThreadLocal.withInitial(() -> new Object[3]);

    private FloatGemm() {
    }

    public static void multiply(float[] x, int rows, int k, PanelSource w, int n, float[] y, Parallel par) {
        multiply(x, rows, k, w, n, y, par, FloatChainKernel.best());
    }

    public static void multiply(float[] x, int rows, int k, PanelSource w, int n, float[] y, Parallel par, FloatChainKernel kernel) {
        int tasks = (n + Gemm.NB - 1) / Gemm.NB;
        par.forEach(tasks, t -> {
            int o0 = t * Gemm.NB, nb = Math.min(Gemm.NB, n - o0), nr = FloatChainKernel.NR;
            int panels = (nb + nr - 1) / nr, ldc = panels * nr;
            Object[] s = SCRATCH.get();
            int packedLen = Gemm.NB * Gemm.KC;
            if (s[0] == null) {
                s[0] = new double[packedLen];
                s[1] = new float[packedLen];
            }
            if (s[2] == null || ((float[]) s[2]).length < rows * ldc) s[2] = new float[rows * Gemm.NB];
            double[] packed = (double[]) s[0];
            float[] pf = (float[]) s[1], c = (float[]) s[2];
            Arrays.fill(c, 0, rows * ldc, 0f);
            for (int k0 = 0; k0 < k; k0 += Gemm.KC) {
                int kc = Math.min(Gemm.KC, k - k0);
                w.pack(o0, nb, k0, kc, packed);
                for (int i = 0; i < panels * nr * kc; i++) pf[i] = (float) packed[i];   // exact: values are floats
                for (int p = 0; p < panels; p++) kernel.multiply(rows, x, k0, k, pf, p * kc * nr, kc, c, p * nr, ldc);
            }
            for (int r = 0; r < rows; r++) System.arraycopy(c, r * ldc, y, r * n + o0, nb);
        });
    }
}
