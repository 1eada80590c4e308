package modeldiff.forward.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link FloatChainKernel} on the Vector API: one 512-bit vector holds a row's 16 outputs; blocks of 6 rows keep 6
 * independent chains in flight. {@code mul} then {@code add} lanewise, each rounded, exactly as the scalar loop.
 */
final class FloatVectorKernel implements FloatChainKernel {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_512;

    static FloatChainKernel create() {
        return FloatVector.SPECIES_PREFERRED.length() >= 16 ? new FloatVectorKernel() : null;
    }

    @Override
    public String name() {
        return "vector-512";
    }

    @Override
    public void multiply(int rows, float[] a, int aOff, int lda, float[] b, int bOff, int kc, float[] c, int cOff, int ldc) {
        int r = 0;
        for (; rows - r >= 6; r += 6) six(a, aOff + r * lda, lda, b, bOff, kc, c, cOff + r * ldc, ldc);
        for (; r < rows; r++) one(a, aOff + r * lda, b, bOff, kc, c, cOff + r * ldc);
    }

    private static void six(float[] a, int aOff, int lda, float[] b, int bOff, int kc, float[] c, int cOff, int ldc) {
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        FloatVector c0 = FloatVector.fromArray(S, c, cOff), c1 = FloatVector.fromArray(S, c, cOff + ldc),
                c2 = FloatVector.fromArray(S, c, cOff + 2 * ldc), c3 = FloatVector.fromArray(S, c, cOff + 3 * ldc),
                c4 = FloatVector.fromArray(S, c, cOff + 4 * ldc), c5 = FloatVector.fromArray(S, c, cOff + 5 * ldc);
        for (int k = 0; k < kc; k++) {
            FloatVector w = FloatVector.fromArray(S, b, bOff + k * NR);
            c0 = c0.add(w.mul(a[a0 + k]));
            c1 = c1.add(w.mul(a[a1 + k]));
            c2 = c2.add(w.mul(a[a2 + k]));
            c3 = c3.add(w.mul(a[a3 + k]));
            c4 = c4.add(w.mul(a[a4 + k]));
            c5 = c5.add(w.mul(a[a5 + k]));
        }
        c0.intoArray(c, cOff);
        c1.intoArray(c, cOff + ldc);
        c2.intoArray(c, cOff + 2 * ldc);
        c3.intoArray(c, cOff + 3 * ldc);
        c4.intoArray(c, cOff + 4 * ldc);
        c5.intoArray(c, cOff + 5 * ldc);
    }

    private static void one(float[] a, int aOff, float[] b, int bOff, int kc, float[] c, int cOff) {
        FloatVector acc = FloatVector.fromArray(S, c, cOff);
        for (int k = 0; k < kc; k++) acc = acc.add(FloatVector.fromArray(S, b, bOff + k * NR).mul(a[aOff + k]));
        acc.intoArray(c, cOff);
    }
}
