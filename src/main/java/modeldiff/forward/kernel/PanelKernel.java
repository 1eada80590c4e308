package modeldiff.forward.kernel;

/**
 * The innermost loop of every float64 matrix product: a block of up to {@link #maxRows()} rows of A times one packed
 * panel of {@link #NR} columns of B, added into C. Each element of C is one chain of fused multiply-adds over k in
 * ascending order ({@code c = fma(a[k], b[k], c)}, one rounding per step): the vector and the scalar implementation
 * perform exactly the same operations per element, so their results are bit-identical, and so are results computed
 * with any blocking of k (a block continues the chain from the C it is given).
 */
public interface PanelKernel {
    /** Panel width: B is packed as [k][NR] (see {@link PanelSource}). */
    int NR = 16;

    /**
     * For r in [0, rows), j in [0, NR), k in [0, kc): {@code c[cOff + r·ldc + j] = fma(a[aOff + r·lda + k],
     * b[bOff + k·NR + j], c[cOff + r·ldc + j])}, k ascending.
     */
    void multiply(int rows, double[] a, int aOff, int lda, double[] b, int bOff, int kc, double[] c, int cOff, int ldc);

    /** Rows one call handles best; the driver feeds blocks of this many and smaller tails. */
    int maxRows();

    String name();

    /** The Vector API kernel when jdk.incubator.vector is in the module graph and the CPU has wide vectors, else scalar. */
    static PanelKernel best() {
        return KernelChoice.BEST;
    }

    static PanelKernel scalar() {
        return ScalarKernel.INSTANCE;
    }
}
