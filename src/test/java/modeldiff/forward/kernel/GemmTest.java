package modeldiff.forward.kernel;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The matrix product is defined element by element as a float64 fma chain over k in ascending order, then + bias; every
 * kernel, blocking and thread count must produce exactly those bits. Shapes straddle the panel width (16), the row
 * blocks (6/4/2/1 and 3/1) and the k slice ({@link Gemm#KC}).
 */
class GemmTest {
    private static final int[][] SHAPES = {
            {1, 1, 1}, {13, 200, 333}, {7, 17, 5}, {64, 96, 128}, {6, Gemm.KC + 3, 40}, {5, 2 * Gemm.KC + 1, 33}, {2, 31, 1}};

    @Test
    void everyKernelAndThreadCountGivesTheDefinedChain() {
        SplittableRandom r = new SplittableRandom(7);
        PanelKernel[] kernels = {ScalarKernel.INSTANCE, VectorKernel.create(true), VectorKernel.create(false), PanelKernel.best()};
        for (int[] s : SHAPES) {
            int rows = s[0], k = s[1], n = s[2];
            double[] x = random(r, rows * k), w = random(r, n * k), b = random(r, n);
            double[] expected = new double[rows * n];
            for (int i = 0; i < rows; i++)
                for (int o = 0; o < n; o++) {
                    double acc = 0;
                    for (int j = 0; j < k; j++) acc = Math.fma(x[i * k + j], w[o * k + j], acc);
                    expected[i * n + o] = acc + b[o];
                }
            for (PanelKernel kernel : kernels)
                for (int threads = 1; threads <= 3; threads++) {
                    double[] y = new double[rows * n];
                    Gemm.multiply(x, rows, k, PanelSource.ofRows(w, 0, k), n, b, y, Parallel.of(threads), kernel);
                    assertArrayEquals(expected, y, kernel.name() + " " + threads + " threads " + java.util.Arrays.toString(s));
                }
        }
    }

    /** lowp's model of a CPU fp32 GEMM: the running float sum {@code f += a·b}, k ascending, whatever the kernel. */
    @Test
    void floatChainsMatchTheScalarLoop() {
        SplittableRandom r = new SplittableRandom(5);
        FloatChainKernel[] kernels = {FloatChainKernel.scalar(), FloatChainKernel.best()};
        for (int[] s : SHAPES) {
            int rows = s[0], k = s[1], n = s[2];
            float[] x = new float[rows * k];
            double[] w = new double[n * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-1, 1);
            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextDouble(-1, 1);
            float[] expected = new float[rows * n];
            for (int i = 0; i < rows; i++)
                for (int o = 0; o < n; o++) {
                    float f = 0;
                    for (int j = 0; j < k; j++) f += x[i * k + j] * (float) w[o * k + j];
                    expected[i * n + o] = f;
                }
            for (FloatChainKernel kernel : kernels)
                for (int threads = 1; threads <= 3; threads++) {
                    float[] y = new float[rows * n];
                    FloatGemm.multiply(x, rows, k, PanelSource.ofRows(w, 0, k), n, y, Parallel.of(threads), kernel);
                    assertArrayEquals(expected, y, kernel.name() + " " + threads + " threads " + java.util.Arrays.toString(s));
                }
        }
    }

    @Test
    void transposedSourceMatchesRowSource() {
        SplittableRandom r = new SplittableRandom(3);
        int rows = 9, k = 37, n = 21;
        double[] x = random(r, rows * k), w = random(r, n * k), wt = new double[k * n];
        for (int o = 0; o < n; o++) for (int j = 0; j < k; j++) wt[j * n + o] = w[o * k + j];
        double[] a = new double[rows * n], c = new double[rows * n];
        Gemm.multiply(x, rows, k, PanelSource.ofRows(w, 0, k), n, null, a, Parallel.SERIAL);
        Gemm.multiply(x, rows, k, PanelSource.ofColumns(wt, 0, n), n, null, c, Parallel.of(2));
        assertArrayEquals(a, c);
    }

    @Test
    void bestKernelIsVectorWhenTheModuleIsPresent() {
        // surefire adds --add-modules jdk.incubator.vector (pom.xml), as the launcher does.
        boolean module = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        assertEquals(module, PanelKernel.best().name().startsWith("vector"), PanelKernel.best().name());
    }

    private static double[] random(SplittableRandom r, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = r.nextDouble(-1, 1) * Math.scalb(1.0, r.nextInt(-4, 5));
        return v;
    }
}
