package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * Typed launchers for the kernels of src/main/cuda/modeldiff_kernels.cu (one method per kernel, grid sizes here).
 * {@code bf} = true rounds each op's result to bfloat16 as HF's eager path does; false keeps fp32.
 */
public final class Kernels {
    private final CudaRuntime rt;

    public Kernels(CudaRuntime rt) {
        this.rt = rt;
    }

    private static int blocks(long n, int per) {
        long b = (n + per - 1) / per;
        if (b > Integer.MAX_VALUE) throw new IllegalArgumentException("grid too large: " + n);
        return (int) Math.max(1, b);
    }

    private static int i(boolean b) {
        return b ? 1 : 0;
    }

    public void embed(CUdeviceptr out, CUdeviceptr table, boolean bf16Table, CUdeviceptr ids, int T, int H, float scale,
                      boolean applyScale, boolean bf) {
        rt.launch(bf16Table ? "embed_bf16" : "embed_f32", blocks((long) T * H, 256), 1, 256, 0,
                out, table, ids, T, H, scale, i(applyScale), i(bf));
    }

    public void addPositions(CUdeviceptr x, CUdeviceptr wpe, int T, int H, int pos0, boolean bf) {
        rt.launch("add_positions", blocks((long) T * H, 256), 1, 256, 0, x, wpe, T, H, pos0, i(bf));
    }

    public void norm(CUdeviceptr out, CUdeviceptr x, CUdeviceptr w, CUdeviceptr b, int rows, int dim, float eps,
                     boolean centered, boolean unit, boolean weightThenCast, boolean bf) {
        int threads = dim >= 1024 ? 512 : dim >= 256 ? 256 : dim > 64 ? 128 : 32;
        if (rows == 0) return;
        rt.launch("norm_rows", rows, 1, threads, 0, out, x, w, b, rows, dim, eps, i(centered), i(unit), i(weightThenCast), i(bf));
    }

    /** C[M, N] = A[M, K]·W[N, K]ᵀ + bias: tensor cores when W is bf16, FFMA when W is fp32. */
    public void gemm(CUdeviceptr c, CUdeviceptr a, CUdeviceptr w, boolean bf16Weights, CUdeviceptr bias, int M, int N, int K, boolean bf) {
        if (M == 0 || N == 0) return;
        if (bf16Weights) rt.launch("gemm_bf16", blocks(N, 128), blocks(M, 128), 256, 0, c, a, w, bias, M, N, K, i(bf));
        else rt.launch("gemm_f32", blocks(N, 64), blocks(M, 64), 256, 0, c, a, w, bias, M, N, K, i(bf));
    }

    public void rope(CUdeviceptr x, int T, int heads, int hd, int half, CUdeviceptr invFreq, int pos0, float scaling,
                     boolean interleaved, boolean bf16Angles, boolean bf) {
        if (half == 0) return;
        rt.launch("rope", blocks((long) T * heads * half, 256), 1, 256, 0, x, T, heads, hd, half, invFreq, pos0, scaling,
                i(interleaved), i(bf16Angles), i(bf));
    }

    public static final int ATTN_MAX_HEAD_DIM = 256;

    /** scale multiplies the scores, or with divide they are divided by scaleDiv (GPT-2); cap NaN = no soft-cap. */
    public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, int T, int heads, int kvHeads,
                          int hd, int window, float scale, boolean divide, float scaleDiv, float cap, boolean bf) {
        if (hd > ATTN_MAX_HEAD_DIM) throw new IllegalArgumentException("head_dim " + hd + " > " + ATTN_MAX_HEAD_DIM);
        rt.launch("attention", blocks(T, 16), heads, 128, 2 * 16 * hd * 4, out, q, k, v, T, heads, kvHeads, hd, window,
                scale, i(divide), scaleDiv, Float.isNaN(cap) ? 0f : cap, i(bf));
    }

    /** kind: Activation ordinal (0 gelu, 1 gelu tanh, 2 silu, 3 relu², 4 relu). up null = not gated. */
    public void mlpAct(CUdeviceptr out, CUdeviceptr g, CUdeviceptr up, long n, int kind, boolean geluNew, boolean bf) {
        rt.launch("mlp_act", blocks(n, 256), 1, 256, 0, out, g, up, n, kind, i(up != null), i(geluNew), i(bf));
    }

    public void residualAdd(CUdeviceptr x, CUdeviceptr y, long n, boolean bf) {
        rt.launch("residual_add", blocks(n, 256), 1, 256, 0, x, y, n, i(bf));
    }

    public void softcap(CUdeviceptr x, long n, float cap, boolean bf) {
        rt.launch("softcap", blocks(n, 256), 1, 256, 0, x, n, cap, i(bf));
    }

    public void fillBf16(CUdeviceptr w, long n, long seed, float amp, float offset) {
        rt.launch("fill_bf16", blocks(n, 256), 1, 256, 0, w, n, seed, amp, offset);
    }

    public void fillF32(CUdeviceptr w, long n, long seed, float amp, float offset) {
        rt.launch("fill_f32", blocks(n, 256), 1, 256, 0, w, n, seed, amp, offset);
    }
}
