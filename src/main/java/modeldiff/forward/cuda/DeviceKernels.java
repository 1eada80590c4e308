package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * Typed launchers for the kernels of src/main/cuda/modeldiff_kernels.cu and modeldiff_wgmma.cu (one method per kernel,
 * grid sizes here). Each launch takes its buffers plus one small record of what the kernel computes ({@link NormArgs},
 * {@link AttnArgs}, ...), so call sites name what they pass. {@code bf} = true rounds each op's result to the 16-bit
 * type as HF's eager path does — bfloat16, or IEEE half when {@link #fp16} (cuda:fp16) —; false keeps fp32. 16-bit
 * weights ({@code Linear.bf16}) and operand copies ({@code Act.bf16}) are of that type too. (Not to be confused with
 * forward/kernel, the CPU matrix kernels.)
 */
public final class DeviceKernels {
    private final CudaRuntime rt;

    /**
     * bf16 GEMM kernels: wgmma (sm_90a module), its warp-specialised twin wgmma_ws (same module, opt-in: a producer
     * warpgroup and mbarriers instead of a block-wide barrier per K tile), mma.sync, and the first wmma one (fp32 A, any K).
     */
    public enum GemmVariant { WGMMA, WGMMA_WS, MMA, WMMA }

    /**
     * Attention kernels: tensor cores (bf16 mode, head_dim 16/32/64/128; TC the attention_fa* kernels, TC_V1 the first
     * attention_tc* ones, kept for comparison), the CUDA-core flash kernel (any head_dim ≤ 256), or EAGER: HF's eager
     * softmax op for op (normalised probabilities rounded to the dtype; slow, for comparisons at the level of rounding
     * ties).
     */
    public enum AttentionVariant { TC, TC_V1, SIMT, EAGER }

    /** An activation buffer: fp32 values and, where a kernel writes or a GEMM reads one, their bf16 copy (else null). */
    public record Act(CUdeviceptr f32, CUdeviceptr bf16) {
        public static Act of(CUdeviceptr f32) {
            return new Act(f32, null);
        }

        /** The same buffers from row {@code row} of a [rows, width] activation on. */
        public Act rows(long row, long width) {
            return new Act(f32.withByteOffset(4L * row * width), bf16 == null ? null : bf16.withByteOffset(2L * row * width));
        }
    }

    /** A linear layer's weight W [out, in] (bf16 or fp32 on the device) and its fp32 bias (null: none). */
    public record Linear(CUdeviceptr w, CUdeviceptr bias, int out, int in, boolean bf16) {
    }

    /** A norm's fp32 weight and bias (null: none) over rows of {@code dim}. */
    public record Norm(CUdeviceptr w, CUdeviceptr b, int dim) {
    }

    /** What a norm computes: epsilon, LayerNorm (centered) vs RMSNorm, the (1 + w) offset, Gemma's cast order. */
    public record NormArgs(float eps, boolean centered, boolean unitOffset, boolean weightThenCast, boolean bf) {
    }

    /** Token embedding: rows of [T, H], scaled by {@code scale} when {@code applyScale}. */
    public record EmbedArgs(int T, int H, float scale, boolean applyScale, boolean bf) {
    }

    /** RoPE over heads of headDim: {@code half} rotated pairs, fp32 inverse frequencies on the device. */
    /** cosSinFp32 (OLMo 2, bf16 only): cos/sin and the rotation stay fp32, one rounding of the result. */
    public record RopeArgs(int headDim, int half, CUdeviceptr invFreq, int pos0, float scaling, boolean interleaved,
                           boolean bf16Angles, boolean bf, boolean cosSinFp32) {
    }

    /**
     * Causal attention of T tokens: scores multiplied by {@code scale}, or (GPT-2) {@code divide}'s bit 1 divides them
     * by {@code scaleDiv} and bit 2 then by {@code scale} (the layer number, scale_attn_by_inverse_layer_idx), each a
     * rounded op; {@code cap} NaN = no soft-cap; window ≤ 0 = no sliding window.
     */
    public record AttnArgs(int T, int heads, int kvHeads, int headDim, int window, float scale, int divide,
                           float scaleDiv, float cap, boolean bf, CUdeviceptr sinks, int chunk, int pos0) {
        /** Without sinks or chunks. */
        public AttnArgs(int T, int heads, int kvHeads, int headDim, int window, float scale, int divide, float scaleDiv,
                        float cap, boolean bf) {
            this(T, heads, kvHeads, headDim, window, scale, divide, scaleDiv, cap, bf, null, 0, 0);
        }

        /**
         * The same attention with gpt-oss's per-head sink logits (fp32 [heads] on the device, null: none) and Llama 4's
         * chunks of {@code chunk} absolute positions starting at {@code pos0} for query 0 (chunk ≤ 0: none).
         */
        public AttnArgs with(CUdeviceptr sinks, int chunk, int pos0) {
            return new AttnArgs(T, heads, kvHeads, headDim, window, scale, divide, scaleDiv, cap, bf, sinks, chunk, pos0);
        }
    }

    /** The MLP activation: kind = Activation ordinal (0 gelu, 1 gelu tanh, 2 silu, 3 relu², 4 relu); HF's gelu_new formula. */
    public record MlpArgs(int kind, boolean geluNew, boolean bf) {
    }

    /** The bf16 GEMM used when A has a bf16 copy and K % 8 == 0 (else WMMA). */
    public GemmVariant gemm;
    /** The 16-bit type is IEEE half (cuda:fp16: kernels *_f16, rounding mode 2) instead of bfloat16. */
    public boolean fp16;
    /** Split-K policy for the tensor-core GEMMs ({@link SplitK#fromProperty}, -Dmodeldiff.cuda.splitK). */
    public SplitK splitK = SplitK.fromProperty();
    /** The attention kernel used in bf16 mode when the head_dim allows it (else SIMT). */
    public AttentionVariant attention;
    /**
     * Which form of the plain tensor-core attention kernel runs at head_dim 64 / 128 (no cap, divide, sinks or chunks):
     * -Dmodeldiff.cuda.faPlain=auto|base|occ|r32 ({@link FaPlain}); null = auto, the default ({@link FaPlain#auto}).
     */
    public FaPlain faPlain = FaPlain.fromProperty();

    /**
     * The plain attention_fa kernel's forms at head_dim 64 / 128, the same arithmetic: BASE (registers uncapped, no
     * spills), OCC (registers capped for one more block per SM, a few spilled words), R32 (32 query rows per warp, 128
     * per block: each K/V fragment from shared memory feeds twice the MMAs; Q re-read from shared memory every tile).
     * Which is fastest is measured (CudaSelfTest attnbench), not assumed; at other head_dims every form is BASE.
     */
    public enum FaPlain {
        BASE("", 64), OCC("_occ", 64), R32("_r32", 128);

        final String suffix;
        /** Queries per block. */
        final int rows;

        FaPlain(String suffix, int rows) {
            this.suffix = suffix;
            this.rows = rows;
        }

        /** -Dmodeldiff.cuda.faPlain; null for auto (the default). */
        static FaPlain fromProperty() {
            String p = System.getProperty("modeldiff.cuda.faPlain", "auto").toUpperCase(java.util.Locale.ROOT);
            return p.equals("AUTO") ? null : valueOf(p);
        }

        /**
         * OCC at head_dim 64 and 128, as timed (CudaSelfTest attnbench on an H100 80GB HBM3, 2026-12-06,
         * docs/gpu-runs/2026-12-06-d/fa): the fastest or within 1 % of it at every causal shape but T = 4096 / hd 128,
         * where R32 was 8 % faster (0.625 vs 0.676 ms); at T = 2048 / hd 128, 0.210 ms vs BASE 0.217 and R32 0.209.
         * Its 20 spilled bytes at hd 128 (ptxas) cost less than the third block per SM gains.
         */
        static FaPlain auto() {
            return OCC;
        }
    }

    public DeviceKernels(CudaRuntime rt) {
        this.rt = rt;
        this.gemm = defaultGemm(rt);
        this.attention = defaultAttention();
    }

    /** -Dmodeldiff.cuda.attention=tc|tc_v1|simt|eager, default tc. */
    public static AttentionVariant defaultAttention() {
        return AttentionVariant.valueOf(System.getProperty("modeldiff.cuda.attention", "tc").toUpperCase(java.util.Locale.ROOT));
    }

    /** -Dmodeldiff.cuda.gemm=wgmma|wgmma_ws|mma|wmma; default wgmma where its module loaded, else mma. */
    public static GemmVariant defaultGemm(CudaRuntime rt) {
        return resolveGemm(System.getProperty("modeldiff.cuda.gemm", "auto"), rt::has);
    }

    /**
     * The GEMM kernel named by {@code prop} (auto, wgmma, wgmma_ws, mma, wmma; any case), given which kernels loaded.
     * auto: wgmma where the sm_90a module loaded, else mma. wgmma_ws without that module: the same fallback as auto
     * (the kernel is opt-in; a box without sm_90a still runs). Anything else is an IllegalArgumentException naming it.
     */
    static GemmVariant resolveGemm(String prop, java.util.function.Predicate<String> has) {
        String p = prop.trim().toUpperCase(java.util.Locale.ROOT);
        GemmVariant auto = has.test("gemm_wgmma") ? GemmVariant.WGMMA : GemmVariant.MMA;
        if (p.equals("AUTO")) return auto;
        GemmVariant g;
        try {
            g = GemmVariant.valueOf(p);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("modeldiff.cuda.gemm must be auto, wgmma, wgmma_ws, mma or wmma, got '" + prop + "'");
        }
        return g == GemmVariant.WGMMA_WS && !has.test("gemm_wgmma_ws") ? auto : g;
    }

    private static int blocks(long n, int per) {
        long b = (n + per - 1) / per;
        if (b > Integer.MAX_VALUE) throw new IllegalArgumentException("grid too large: " + n);
        return (int) Math.max(1, b);
    }

    private static int i(boolean b) {
        return b ? 1 : 0;
    }

    /** The kernels' rounding mode: 0 fp32, 1 bf16, 2 fp16. */
    int mode(boolean bf) {
        return !bf ? 0 : fp16 ? 2 : 1;
    }

    public void embed(CUdeviceptr out, CUdeviceptr table, boolean bf16Table, CUdeviceptr ids, EmbedArgs a) {
        rt.launch(!bf16Table ? "embed_f32" : fp16 ? "embed_f16" : "embed_bf16", blocks((long) a.T() * a.H(), 256), 1, 256, 0,
                out, table, ids, a.T(), a.H(), a.scale(), i(a.applyScale()), mode(a.bf()));
    }

    public void addPositions(CUdeviceptr x, CUdeviceptr wpe, int T, int H, int pos0, boolean bf) {
        rt.launch("add_positions", blocks((long) T * H, 256), 1, 256, 0, x, wpe, T, H, pos0, mode(bf));
    }

    /** out = norm(x) over {@code rows} rows of n.dim(); out.bf16() (may be null) receives the same values as bf16. */
    public void norm(Act out, CUdeviceptr x, Norm n, int rows, NormArgs a) {
        int dim = n.dim();
        int threads = dim >= 1024 ? 512 : dim >= 256 ? 256 : dim > 64 ? 128 : 32;
        if (rows == 0) return;
        rt.launch("norm_rows", rows, 1, threads, 0, out.f32(), out.bf16(), x, n.w(), n.b(), rows, dim, a.eps(),
                i(a.centered()), i(a.unitOffset()), i(a.weightThenCast()), mode(a.bf()));
    }

    /** out[i] = bf16(in[i]), or fp16(in[i]) when {@link #fp16}: the 16-bit operand copy. */
    public void toBf16(CUdeviceptr out, CUdeviceptr in, long n) {
        if (n <= 0) return;
        if (fp16) rt.launch("f32_to_f16", blocks(n, 256), 1, 256, 0, out, in, n);
        else rt.launch("f32_to_bf16", blocks(n, 1024), 1, 256, 0, out, in, n);
    }

    static final int TC_SMEM = 4 * (128 + 256) * 128 + 1024;

    /** A tensor-core GEMM launch (128×256 output tiles): the kernel's name, threads per block, dynamic shared memory. */
    record TcGemm(String name, int threads, int smem) {
    }

    /**
     * The launch of a tensor-core GEMM variant (WGMMA, WGMMA_WS, MMA). WGMMA_WS: 384 threads (a producer warpgroup
     * and two consumers) and, after the 4 stages (+ 1024 bytes of alignment slack), 4 "full" and 4 "empty" mbarriers
     * of 8 bytes (modeldiff_wgmma.cu).
     */
    static TcGemm tcGemm(GemmVariant g, boolean fp16) {
        String f16 = fp16 ? "_f16" : "";
        return switch (g) {
            case WGMMA -> new TcGemm("gemm_wgmma" + f16, 256, TC_SMEM);
            case WGMMA_WS -> new TcGemm("gemm_wgmma_ws" + f16, 384, TC_SMEM + 2 * 4 * 8);
            case MMA -> new TcGemm("gemm_mma" + f16, 256, TC_SMEM);
            case WMMA -> throw new IllegalArgumentException("wmma is not a 128x256 tensor-core GEMM");
        };
    }

    /** Which kernel {@link #gemm} runs for these arguments (null: the fp32 FFMA one). */
    public GemmVariant gemmFor(CUdeviceptr aB, boolean bf16Weights, int K) {
        if (!bf16Weights) return null;
        return aB != null && K % 8 == 0 ? gemm : GemmVariant.WMMA;
    }

    /**
     * C[M, w.out] = A[M, w.in]·Wᵀ + bias. bf16 weights: with a bf16 copy of A and K % 8 == 0 the {@link #gemm} kernel
     * (wgmma or mma.sync, 128×256×64 tiles), else the wmma kernel on the fp32 A. fp32 weights: FFMA on the fp32 A.
     */
    public void gemm(CUdeviceptr c, Act a, Linear w, int M, boolean bf) {
        gemm(c, a, w, M, bf, null);
    }

    /**
     * c = A·Wᵀ + bias as {@link #gemm}, then res = R(res + c) (the residual add, res [M, w.out]): in the tensor-core
     * GEMMs' epilogue (or split-K's second pass), else by the residual_add kernel; the same values either way.
     */
    public void gemmAdd(CUdeviceptr c, Act a, Linear w, int M, boolean bf, CUdeviceptr res) {
        GemmVariant g = gemmFor(a.bf16(), w.bf16(), w.in());
        if (g == GemmVariant.WGMMA || g == GemmVariant.WGMMA_WS || g == GemmVariant.MMA) {
            gemm(c, a, w, M, bf, res);
            return;
        }
        gemm(c, a, w, M, bf, null);
        residualAdd(res, c, (long) M * w.out(), bf);
    }

    private void gemm(CUdeviceptr c, Act a, Linear w, int M, boolean bf, CUdeviceptr res) {
        int N = w.out(), K = w.in();
        if (M == 0 || N == 0) return;
        GemmVariant g = gemmFor(a.bf16(), w.bf16(), K);
        if (g == null) rt.launch("gemm_f32", blocks(N, 64), blocks(M, 64), 256, 0, c, a.f32(), w.w(), w.bias(), M, N, K, mode(bf));
        else if (g == GemmVariant.WMMA)
            rt.launch(fp16 ? "gemm_f16" : "gemm_bf16", blocks(N, 128), blocks(M, 128), 256, 0, c, a.f32(), w.w(), w.bias(), M, N, K, mode(bf));
        else {
            TcGemm t = tcGemm(g, fp16);
            SplitK.Plan p = splitK.plan(M, N, K, rt.smCount());
            if (p.splits() == 1) {
                rt.launch(t.name(), blocks(M, 128), blocks(N, 256), t.threads(), t.smem(), c, a.bf16(), w.w(), w.bias(), M, N, K,
                        mode(bf), null, 0, res);
                return;
            }
            // split-K: raw fp32 partial sums per K slice, then one fixed-order pass adds them (+ bias, rounding)
            CUdeviceptr part = SplitK.scratch(rt, (long) p.splits() * M * N);
            rt.launchZ(t.name(), blocks(M, 128), blocks(N, 256), p.splits(), t.threads(), t.smem(), c, a.bf16(), w.w(), w.bias(),
                    M, N, K, mode(bf), part, p.ktPer(), null);
            rt.launch("splitk_reduce", blocks((long) M * N, 256), 1, 256, 0, c, part, w.bias(), M, N, p.splits(), mode(bf), res);
        }
    }

    /** dst = src, n floats (a block without pre-norm hands its input on; a parallel block keeps its attention output). */
    public void copy(CUdeviceptr dst, CUdeviceptr src, long n) {
        rt.launch("copy_f32", blocks(n, 256), 1, 256, 0, dst, src, n);
    }

    /** RoPE in place on x [T, heads, headDim]. */
    public void rope(CUdeviceptr x, int T, int heads, RopeArgs r) {
        if (r.half() == 0) return;
        rt.launch("rope", blocks((long) T * heads * r.half(), 256), 1, 256, 0, x, T, heads, r.headDim(), r.half(), r.invFreq(),
                r.pos0(), r.scaling(), i(r.interleaved()), i(r.bf16Angles()), mode(r.bf()) | (r.bf() && r.cosSinFp32() ? 4 : 0));
    }

    public static final int ATTN_MAX_HEAD_DIM = 256;

    /** Whether {@link #attentionTc} serves this head_dim (and is selected). */
    public boolean tcAttention(int hd) {
        return (attention == AttentionVariant.TC || attention == AttentionVariant.TC_V1) && tcHeadDim(hd);
    }

    static boolean tcHeadDim(int hd) {
        return hd == 16 || hd == 32 || hd == 64 || hd == 128;
    }

    /** A tensor-core attention launch: the kernel's name, its dynamic shared memory, queries per block. */
    record TcKernel(String name, int smem, int rows) {
    }

    /**
     * The tensor-core attention kernel for these arguments. TC (attention_faHD): plain (scale, causal, window, GQA;
     * rounding in the 16-bit mode; at head_dim 64 / 128 in the form {@code plain}, null = auto: _occ, _r32), or _gen (soft-cap,
     * GPT-2's divide, sinks, chunks, or fp32 mode: everything compiled in). Shared memory: 4 K/V tiles of 64 rows (Q
     * borrows one), R32 plus Q's 128 rows of its own. TC_V1 (attention_tcHD, 5 tiles): the first kernel, for
     * comparisons; its sinks / chunks twins are gone, so such a launch runs attention_faHD_gen. _f16: fp16 operands.
     */
    static TcKernel tcKernel(AttentionVariant v, boolean fp16, FaPlain plain, AttnArgs a) {
        int hd = a.headDim();
        if (!tcHeadDim(hd)) throw new IllegalArgumentException("tensor-core attention: head_dim " + hd + " not 16/32/64/128");
        boolean var = a.sinks() != null || a.chunk() > 0;
        String f16 = fp16 ? "_f16" : "";
        int tile = 64 * hd * 2;
        if (v == AttentionVariant.TC_V1 && !var) return new TcKernel("attention_tc" + hd + f16, 5 * tile + 128, 64);
        boolean gen = var || !a.bf() || a.divide() != 0 || cap(a) > 0f;
        FaPlain form = gen || hd < 64 ? FaPlain.BASE : plain == null ? FaPlain.auto() : plain;
        return new TcKernel("attention_fa" + hd + (gen ? "_gen" : form.suffix) + f16,
                (4 + (form == FaPlain.R32 ? 2 : 0)) * tile + 128, form.rows);
    }

    /** Tensor-core attention over bf16 copies of q/k/v; out.f32() fp32, out.bf16() (may be null) the same as bf16. */
    public void attentionTc(Act out, CUdeviceptr qB, CUdeviceptr kB, CUdeviceptr vB, AttnArgs a) {
        if (a.T() == 0) return;
        TcKernel kn = tcKernel(attention, fp16, faPlain, a);
        if (attention != AttentionVariant.TC_V1 && !rt.has(kn.name())) {   // a module built before the fa kernels
            if (!warnedNoFa) System.err.println("[cuda] " + kn.name() + " not in the module: tensor-core attention v1");
            warnedNoFa = true;
            kn = tcKernel(AttentionVariant.TC_V1, fp16, FaPlain.BASE, a);
        }
        rt.launch(kn.name(), blocks(a.T(), kn.rows()), a.heads(), 128, kn.smem(), out.f32(), out.bf16(), qB, kB, vB, a.T(),
                a.heads(), a.kvHeads(), a.window(), a.scale(), a.divide(), a.scaleDiv(), cap(a), mode(a.bf()), a.sinks(),
                a.chunk(), a.pos0());
    }

    private static boolean warnedNoFa;

    /**
     * Attention over fp32 q/k/v (any head_dim ≤ {@value #ATTN_MAX_HEAD_DIM}) on CUDA cores: the eager kernel when
     * {@link #attention} is EAGER, else the flash one.
     */
    public void attention(CUdeviceptr out, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, AttnArgs a) {
        int hd = a.headDim();
        if (hd > ATTN_MAX_HEAD_DIM) throw new IllegalArgumentException("head_dim " + hd + " > " + ATTN_MAX_HEAD_DIM);
        if (attention == AttentionVariant.EAGER) {
            if (a.T() == 0) return;
            rt.launch("attention_eager", a.T(), a.heads(), 32, 0, out, q, k, v, a.T(), a.heads(), a.kvHeads(), hd, a.window(),
                    a.scale(), a.divide(), a.scaleDiv(), cap(a), mode(a.bf()), a.sinks(), a.chunk(), a.pos0());
            return;
        }
        rt.launch("attention", blocks(a.T(), 16), a.heads(), 128, 2 * 16 * hd * 4, out, q, k, v, a.T(), a.heads(), a.kvHeads(),
                hd, a.window(), a.scale(), a.divide(), a.scaleDiv(), cap(a), mode(a.bf()), a.sinks(), a.chunk(), a.pos0());
    }

    private static float cap(AttnArgs a) {
        return Float.isNaN(a.cap()) ? 0f : a.cap();
    }

    /** out = act(g) (· up when gated; up null = not gated); out.bf16() (may be null) receives the same values as bf16. */
    public void mlpAct(Act out, CUdeviceptr g, CUdeviceptr up, long n, MlpArgs a) {
        rt.launch("mlp_act", blocks(n, 256), 1, 256, 0, out.f32(), out.bf16(), g, up, n, a.kind(), i(up != null),
                i(a.geluNew()), mode(a.bf()));
    }

    /**
     * Moves n values per (token, head): dst[t, h, dstOff + d] = src[t, h, d] with the given row / head strides (floats;
     * srcHead 0 broadcasts one head), optionally de-interleaving pairs into halves (MLA's rope_interleave).
     */
    public record HeadCopy(int dstRow, int dstHead, int dstOff, int srcRow, int srcHead, int heads, int n, boolean deinterleave) {
    }

    public void copyHeads(CUdeviceptr dst, CUdeviceptr src, int T, HeadCopy c) {
        long n = (long) T * c.heads() * c.n();
        if (n > 0) rt.launch("copy_heads", blocks(n, 256), 1, 256, 0, dst, c.dstRow(), c.dstHead(), c.dstOff(), src, c.srcRow(),
                c.srcHead(), T, c.heads(), c.n(), i(c.deinterleave()));
    }

    /** Llama 4's temperature tuning of x [T, width] in place (positions pos0 + t). */
    public void temperatureScale(CUdeviceptr x, int T, int width, int pos0, float attnScale, float floorScale, boolean bf) {
        long n = (long) T * width;
        if (n > 0) rt.launch("temperature_scale", blocks(n, 256), 1, 256, 0, x, T, width, pos0, attnScale, floorScale, mode(bf));
    }

    public void residualAdd(CUdeviceptr x, CUdeviceptr y, long n, boolean bf) {
        rt.launch("residual_add", blocks(n, 256), 1, 256, 0, x, y, n, mode(bf));
    }

    public void softcap(CUdeviceptr x, long n, float cap, boolean bf) {
        rt.launch("softcap", blocks(n, 256), 1, 256, 0, x, n, cap, mode(bf));
    }

    /** Seeded 16-bit weights: bf16, or fp16 when {@link #fp16}. */
    public void fillBf16(CUdeviceptr w, long n, long seed, float amp, float offset) {
        rt.launch(fp16 ? "fill_f16" : "fill_bf16", blocks(n, 256), 1, 256, 0, w, n, seed, amp, offset);
    }

    public void fillF32(CUdeviceptr w, long n, long seed, float amp, float offset) {
        rt.launch("fill_f32", blocks(n, 256), 1, 256, 0, w, n, seed, amp, offset);
    }
}
