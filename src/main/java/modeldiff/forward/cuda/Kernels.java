package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * Typed launchers for the kernels of src/main/cuda/modeldiff_kernels.cu (one method per kernel, grid sizes here).
 * {@code bf} = true rounds each op's result to bfloat16 as HF's eager path does; false keeps fp32.
 */
public final class Kernels {
    private final CudaRuntime rt;

    /** bf16 GEMM kernels: wgmma (sm_90a module), mma.sync, and the first wmma one (fp32 A, any K). */
    public enum Gemm { WGMMA, MMA, WMMA }

    /** Attention kernels in bf16 mode: tensor cores (head_dim 16/32/64/128) or the CUDA-core one (any head_dim ≤ 256). */
    public enum Attention { TC, SIMT }

    /** The bf16 GEMM used when A has a bf16 copy and K % 8 == 0 (else WMMA). */
    public Gemm gemm;
    /** The attention kernel used in bf16 mode when the head_dim allows it (else SIMT). */
    public Attention attention;

    public Kernels(CudaRuntime rt) {
        this.rt = rt;
        this.gemm = defaultGemm(rt);
        this.attention = "simt".equalsIgnoreCase(System.getProperty("modeldiff.cuda.attention", "tc")) ? Attention.SIMT : Attention.TC;
    }

    /** -Dmodeldiff.cuda.gemm=wgmma|mma|wmma; default wgmma where its module loaded, else mma. */
    public static Gemm defaultGemm(CudaRuntime rt) {
        String p = System.getProperty("modeldiff.cuda.gemm", "auto").toUpperCase(java.util.Locale.ROOT);
        if (!p.equals("AUTO")) return Gemm.valueOf(p);
        return rt.has("gemm_wgmma") ? Gemm.WGMMA : Gemm.MMA;
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

    /** outB (may be null) receives the same values as bf16. */
    public void norm(CUdeviceptr out, CUdeviceptr outB, CUdeviceptr x, CUdeviceptr w, CUdeviceptr b, int rows, int dim, float eps,
                     boolean centered, boolean unit, boolean weightThenCast, boolean bf) {
        int threads = dim >= 1024 ? 512 : dim >= 256 ? 256 : dim > 64 ? 128 : 32;
        if (rows == 0) return;
        rt.launch("norm_rows", rows, 1, threads, 0, out, outB, x, w, b, rows, dim, eps, i(centered), i(unit), i(weightThenCast), i(bf));
    }

    public void norm(CUdeviceptr out, CUdeviceptr x, CUdeviceptr w, CUdeviceptr b, int rows, int dim, float eps,
                     boolean centered, boolean unit, boolean weightThenCast, boolean bf) {
        norm(out, null, x, w, b, rows, dim, eps, centered, unit, weightThenCast, bf);
    }

    /** out[i] = bf16(in[i]). */
    public void toBf16(CUdeviceptr out, CUdeviceptr in, long n) {
        if (n > 0) rt.launch("f32_to_bf16", blocks(n, 1024), 1, 256, 0, out, in, n);
    }

    /** C[M, N] = A[M, K]·W[N, K]ᵀ + bias: tensor cores when W is bf16, FFMA when W is fp32. */
    public void gemm(CUdeviceptr c, CUdeviceptr a, CUdeviceptr w, boolean bf16Weights, CUdeviceptr bias, int M, int N, int K, boolean bf) {
        gemm(c, a, null, w, bf16Weights, bias, M, N, K, bf);
    }

    static final int TC_SMEM = 4 * (128 + 256) * 128 + 1024;

    /** Which kernel {@link #gemm} runs for these arguments. */
    public Gemm gemmFor(CUdeviceptr aB, boolean bf16Weights, int K) {
        if (!bf16Weights) return null;
        return aB != null && K % 8 == 0 ? gemm : Gemm.WMMA;
    }

    /**
     * C[M, N] = A[M, K]·W[N, K]ᵀ + bias. bf16 weights: with aB (A as bf16) and K % 8 == 0 the {@link #gemm} kernel
     * (wgmma or mma.sync, 128×256×64 tiles), else the wmma kernel on the fp32 A. fp32 weights: FFMA on the fp32 A.
     */
    public void gemm(CUdeviceptr c, CUdeviceptr a, CUdeviceptr aB, CUdeviceptr w, boolean bf16Weights, CUdeviceptr bias,
                     int M, int N, int K, boolean bf) {
        if (M == 0 || N == 0) return;
        Gemm g = gemmFor(aB, bf16Weights, K);
        if (g == null) rt.launch("gemm_f32", blocks(N, 64), blocks(M, 64), 256, 0, c, a, w, bias, M, N, K, i(bf));
        else if (g == Gemm.WMMA) rt.launch("gemm_bf16", blocks(N, 128), blocks(M, 128), 256, 0, c, a, w, bias, M, N, K, i(bf));
        else rt.launch(g == Gemm.WGMMA ? "gemm_wgmma" : "gemm_mma", blocks(M, 128), blocks(N, 256), 256, TC_SMEM,
                    c, aB, w, bias, M, N, K, i(bf));
    }

    public void rope(CUdeviceptr x, int T, int heads, int hd, int half, CUdeviceptr invFreq, int pos0, float scaling,
                     boolean interleaved, boolean bf16Angles, boolean bf) {
        rope(x, T, heads, hd, half, invFreq, pos0, scaling, interleaved, bf16Angles, bf, false);
    }

    /** cosSinFp32 (OLMo 2, bf16 only): cos/sin and the rotation stay fp32, one rounding of the result. */
    public void rope(CUdeviceptr x, int T, int heads, int hd, int half, CUdeviceptr invFreq, int pos0, float scaling,
                     boolean interleaved, boolean bf16Angles, boolean bf, boolean cosSinFp32) {
        if (half == 0) return;
        rt.launch("rope", blocks((long) T * heads * half, 256), 1, 256, 0, x, T, heads, hd, half, invFreq, pos0, scaling,
                i(interleaved), i(bf16Angles), bf ? (cosSinFp32 ? 2 : 1) : 0);
    }

    /** dst = src, n floats (a block without pre-norm hands its input on; a parallel block keeps its attention output). */
    public void copy(CUdeviceptr dst, CUdeviceptr src, long n) {
        rt.launch("copy_f32", blocks(n, 256), 1, 256, 0, dst, src, n);
    }

    public static final int ATTN_MAX_HEAD_DIM = 256;

    /** Whether {@link #attentionTc} serves this head_dim (and is selected). */
    public boolean tcAttention(int hd) {
        return attention == Attention.TC && (hd == 16 || hd == 32 || hd == 64 || hd == 128);
    }

    /** Tensor-core attention over bf16 copies of q/k/v; out fp32, outB (may be null) the same as bf16. */
    public void attentionTc(CUdeviceptr out, CUdeviceptr outB, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, int T, int heads,
                            int kvHeads, int hd, int window, float scale, int divide, float scaleDiv, float cap, boolean bf) {
        if (T == 0) return;
        int smem = 5 * 64 * hd * 2 + 128;
        rt.launch("attention_tc" + hd, blocks(T, 64), heads, 128, smem, out, outB, qB, kB, vB, T, heads, kvHeads, window,
                scale, divide, scaleDiv, Float.isNaN(cap) ? 0f : cap, i(bf));
    }

    /** divide true = GPT-2's division by scaleDiv only (mode 1). */
    public void attentionTc(CUdeviceptr out, CUdeviceptr outB, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, int T, int heads,
                            int kvHeads, int hd, int window, float scale, boolean divide, float scaleDiv, float cap, boolean bf) {
        attentionTc(out, outB, qB, kB, vB, T, heads, kvHeads, hd, window, scale, divide ? 1 : 0, scaleDiv, cap, bf);
    }

    /** divide true = GPT-2's division by scaleDiv only (mode 1). */
    public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, int T, int heads, int kvHeads,
                          int hd, int window, float scale, boolean divide, float scaleDiv, float cap, boolean bf) {
        attention(out, q, k, v, T, heads, kvHeads, hd, window, scale, divide ? 1 : 0, scaleDiv, cap, bf);
    }

    /**
     * scale multiplies the scores, or (GPT-2) divide's bit 1 divides them by scaleDiv and bit 2 then by scale (the
     * layer number, scale_attn_by_inverse_layer_idx), each a rounded op; cap NaN = no soft-cap.
     */
    public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, int T, int heads, int kvHeads,
                          int hd, int window, float scale, int divide, float scaleDiv, float cap, boolean bf) {
        if (hd > ATTN_MAX_HEAD_DIM) throw new IllegalArgumentException("head_dim " + hd + " > " + ATTN_MAX_HEAD_DIM);
        rt.launch("attention", blocks(T, 16), heads, 128, 2 * 16 * hd * 4, out, q, k, v, T, heads, kvHeads, hd, window,
                scale, divide, scaleDiv, Float.isNaN(cap) ? 0f : cap, i(bf));
    }

    /** kind: Activation ordinal (0 gelu, 1 gelu tanh, 2 silu, 3 relu², 4 relu). up null = not gated. */
    public void mlpAct(CUdeviceptr out, CUdeviceptr g, CUdeviceptr up, long n, int kind, boolean geluNew, boolean bf) {
        mlpAct(out, null, g, up, n, kind, geluNew, bf);
    }

    /** outB (may be null) receives the same values as bf16. */
    public void mlpAct(CUdeviceptr out, CUdeviceptr outB, CUdeviceptr g, CUdeviceptr up, long n, int kind, boolean geluNew, boolean bf) {
        rt.launch("mlp_act", blocks(n, 256), 1, 256, 0, out, outB, g, up, n, kind, i(up != null), i(geluNew), i(bf));
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
