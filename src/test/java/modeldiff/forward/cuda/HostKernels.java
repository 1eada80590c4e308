package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.AttnArgs;
import modeldiff.forward.cuda.DeviceKernels.HeadCopy;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.Norm;
import modeldiff.forward.cuda.DeviceKernels.NormArgs;
import modeldiff.forward.cuda.DeviceKernels.RopeArgs;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A host emulation of the kernels {@link CudaAttentionVariants} launches, in fp32 mode (bf = false only), written
 * from the kernels' contracts (modeldiff_kernels.cu's comments), not from the passes: "device buffers" are float
 * arrays behind CUdeviceptr handles (no native call; nothing is allocated on a device). It lets a test run the
 * variants' data flow (splits, interleave, broadcast, padding, compaction, scale) on the CPU against the float64
 * reference; the kernels' own arithmetic is KernelChecks' job on the GPU.
 */
final class HostKernels implements CudaAttentionVariants.Kernels, CudaAttentionVariants.Alloc {
    private final Map<CUdeviceptr, float[]> mem = new IdentityHashMap<>();

    float[] get(CUdeviceptr p) {
        float[] a = mem.get(p);
        if (a == null) throw new IllegalStateException("not a host buffer");
        return a;
    }

    CUdeviceptr put(float[] a) {
        CUdeviceptr p = new CUdeviceptr();
        mem.put(p, a);
        return p;
    }

    CUdeviceptr put(double[] d) {
        if (d == null) return null;
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return put(f);
    }

    @Override
    public CUdeviceptr f(long n) {
        float[] a = new float[Math.toIntExact(n)];
        java.util.Arrays.fill(a, Float.NaN);   // uninitialised: a read before a write shows
        return put(a);
    }

    @Override
    public CUdeviceptr h(long n) {
        return f(n);
    }

    @Override
    public CUdeviceptr zeros(long n) {
        return put(new float[Math.toIntExact(n)]);
    }

    @Override
    public CUdeviceptr ones(long n) {
        float[] a = new float[Math.toIntExact(n)];
        java.util.Arrays.fill(a, 1f);
        return put(a);
    }

    private static void fp32Only(boolean bf) {
        if (bf) throw new UnsupportedOperationException("the host emulation is fp32 only");
    }

    @Override
    public void gemm(CUdeviceptr c, Act a, Linear w, int M, boolean bf) {
        fp32Only(bf);
        float[] A = get(a.f32()), W = get(w.w()), C = get(c), b = w.bias() == null ? null : get(w.bias());
        int N = w.out(), K = w.in();
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = b == null ? 0 : b[j];
                for (int k = 0; k < K; k++) s += (double) A[i * K + k] * W[j * K + k];
                C[i * N + j] = (float) s;
            }
    }

    /** RMSNorm only (what the variants use): x·rsqrt(mean(x²) + eps)·w (no unit offset, no centering). */
    @Override
    public void norm(Act out, CUdeviceptr x, Norm n, int rows, NormArgs a) {
        fp32Only(a.bf());
        if (a.centered() || a.unitOffset()) throw new UnsupportedOperationException("RMSNorm without offset only");
        float[] X = get(x), Y = get(out.f32()), w = get(n.w());
        int dim = n.dim();
        for (int r = 0; r < rows; r++) {
            double sq = 0;
            for (int j = 0; j < dim; j++) sq += (double) X[r * dim + j] * X[r * dim + j];
            double inv = 1 / Math.sqrt(sq / dim + a.eps());
            for (int j = 0; j < dim; j++) Y[r * dim + j] = (float) (X[r * dim + j] * inv * w[j]);
        }
        if (out.bf16() != null) System.arraycopy(Y, 0, get(out.bf16()), 0, rows * dim);
    }

    /** The rope kernel's contract: angle = pos·inv in fp32, (x1, x2) at (j, j + half) or (2j, 2j + 1), cos/sin scaled. */
    @Override
    public void rope(CUdeviceptr x, int T, int heads, RopeArgs r) {
        fp32Only(r.bf());
        float[] X = get(x), inv = get(r.invFreq());
        int hd = r.headDim(), half = r.half();
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < half; j++) {
                    float angle = (float) (r.pos0() + t) * inv[j];
                    double c = Math.cos(angle) * r.scaling(), s = Math.sin(angle) * r.scaling();
                    int base = (t * heads + h) * hd, i1 = r.interleaved() ? base + 2 * j : base + j;
                    int i2 = r.interleaved() ? base + 2 * j + 1 : base + j + half;
                    double x1 = X[i1], x2 = X[i2];
                    X[i1] = (float) (x1 * c - x2 * s);
                    X[i2] = (float) (x2 * c + x1 * s);
                }
    }

    @Override
    public void copyHeads(CUdeviceptr dst, CUdeviceptr src, int T, HeadCopy c) {
        float[] D = get(dst), S = get(src);
        int n = c.n();
        for (int t = 0; t < T; t++)
            for (int h = 0; h < c.heads(); h++)
                for (int d = 0; d < n; d++) {
                    int sd = !c.deinterleave() ? d : d < n / 2 ? 2 * d : 2 * (d - n / 2) + 1;
                    D[t * c.dstRow() + h * c.dstHead() + c.dstOff() + d] = S[t * c.srcRow() + h * c.srcHead() + sd];
                }
    }

    @Override
    public void toBf16(CUdeviceptr out, CUdeviceptr in, long n) {
        System.arraycopy(get(in), 0, get(out), 0, Math.toIntExact(n));
    }

    /** Causal softmax(q·kᵀ·scale) · v per head of headDim (window, sinks, chunks as the kernels take them). */
    @Override
    public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, AttnArgs a) {
        fp32Only(a.bf());
        if (a.divide() != 0 || !Float.isNaN(a.cap()) && a.cap() > 0) throw new UnsupportedOperationException("plain scale only");
        float[] Q = get(q), K = get(k), V = get(v), O = get(out), sinks = a.sinks() == null ? null : get(a.sinks());
        int T = a.T(), heads = a.heads(), kvHeads = a.kvHeads(), hd = a.headDim(), group = heads / kvHeads;
        double[] sc = new double[T];
        for (int h = 0; h < heads; h++)
            for (int t = 0; t < T; t++) {
                int first = Math.max(a.window() > 0 ? Math.max(0, t - a.window() + 1) : 0,
                        CudaAttentionVariants.chunkFirst(t, a.chunk(), a.pos0()));
                double max = sinks == null ? Double.NEGATIVE_INFINITY : sinks[h];
                for (int s = first; s <= t; s++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double) Q[(t * heads + h) * hd + e] * K[(s * kvHeads + h / group) * hd + e];
                    sc[s] = d * a.scale();
                    max = Math.max(max, sc[s]);
                }
                double sum = sinks == null ? 0 : Math.exp(sinks[h] - max);
                for (int s = first; s <= t; s++) sum += (sc[s] = Math.exp(sc[s] - max));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int s = first; s <= t; s++) o += sc[s] / sum * V[(s * kvHeads + h / group) * hd + e];
                    O[(t * heads + h) * hd + e] = (float) o;
                }
            }
    }

    @Override
    public void attentionTc(Act out, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, AttnArgs a) {
        attention(out.f32(), qB, kB, vB, a);
    }

    @Override
    public boolean tcAttention(int hd) {
        return false;
    }

    @Override
    public void temperatureScale(CUdeviceptr x, int T, int width, int pos0, float attnScale, float floorScale, boolean bf) {
        fp32Only(bf);
        float[] X = get(x);
        for (int t = 0; t < T; t++) {
            double f = Math.log1p(Math.floor((pos0 + t + 1.0) / floorScale)) * attnScale + 1;
            for (int j = 0; j < width; j++) X[t * width + j] = (float) (X[t * width + j] * f);
        }
    }
}
