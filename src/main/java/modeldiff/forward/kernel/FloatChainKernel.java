package modeldiff.forward.kernel;

/**
 * The float32 counterpart of {@link PanelKernel} for lowp's model of a CPU fp32 GEMM: every element is the running
 * fp32 sum {@code c = c + a[k]·b[k]} over k ascending, the product rounded to fp32 and then the sum (two roundings,
 * never fused: Java float arithmetic, scalar or lanewise). Panels are [k][NR] as in {@link PanelSource}.
 */
public interface FloatChainKernel {
    int NR = PanelKernel.NR;

    void multiply(int rows, float[] a, int aOff, int lda, float[] b, int bOff, int kc, float[] c, int cOff, int ldc);

    String name();

    static FloatChainKernel best() {
        return KernelChoice.BEST_FLOAT;
    }

    static FloatChainKernel scalar() {
        return Scalar.INSTANCE;
    }

    final class Scalar implements FloatChainKernel {
        static final Scalar INSTANCE = new Scalar();

        private Scalar() {
        }

        @Override
        public void multiply(int rows, float[] a, int aOff, int lda, float[] b, int bOff, int kc, float[] c, int cOff, int ldc) {
            for (int r = 0; r < rows; r++) {
                int ar = aOff + r * lda, cr = cOff + r * ldc;
                for (int k = 0; k < kc; k++) {
                    float x = a[ar + k];
                    int bk = bOff + k * NR;
                    for (int j = 0; j < NR; j++) c[cr + j] += x * b[bk + j];
                }
            }
        }

        @Override
        public String name() {
            return "scalar";
        }
    }
}
