package modeldiff.forward.kernel;

/**
 * The fallback when the Vector API is absent (no --add-modules jdk.incubator.vector): the same fma chains as
 * VectorKernel, element by element, so the results are bit-identical and only the speed differs.
 */
final class ScalarKernel implements PanelKernel {
    static final ScalarKernel INSTANCE = new ScalarKernel();
    private static final int ROWS = 4;

    private ScalarKernel() {
    }

    @Override
    public void multiply(int rows, double[] a, int aOff, int lda, double[] b, int bOff, int kc, double[] c, int cOff, int ldc) {
        double[] acc = new double[ROWS * NR];
        for (int r0 = 0; r0 < rows; r0 += ROWS) {
            int n = Math.min(ROWS, rows - r0);
            for (int r = 0; r < n; r++) System.arraycopy(c, cOff + (r0 + r) * ldc, acc, r * NR, NR);
            for (int k = 0; k < kc; k++) {
                int bk = bOff + k * NR;
                for (int r = 0; r < n; r++) {
                    double x = a[aOff + (r0 + r) * lda + k];
                    int ar = r * NR;
                    for (int j = 0; j < NR; j++) acc[ar + j] = Math.fma(x, b[bk + j], acc[ar + j]);
                }
            }
            for (int r = 0; r < n; r++) System.arraycopy(acc, r * NR, c, cOff + (r0 + r) * ldc, NR);
        }
    }

    @Override
    public int maxRows() {
        return ROWS;
    }

    @Override
    public String name() {
        return "scalar";
    }
}
