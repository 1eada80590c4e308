package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.forward.cuda.DeviceKernels.Act;

/**
 * Launchers for the MoE kernels of src/main/cuda/modeldiff_moe.cu (grid sizes here, as {@link DeviceKernels} does
 * for the dense ones). Slots are (token, choice) pairs t·k + j; after {@link #group} the expert rows of the grouped
 * buffers are laid out expert by expert ({@link Grouping}).
 */
public final class MoeKernels {
    /** Most experts / experts per token the routing kernel handles (its arrays; the pass refuses more by name). */
    public static final int MAX_EXPERTS = 512, MAX_TOP_K = 32;

    private final CudaRuntime rt;

    public MoeKernels(CudaRuntime rt) {
        this.rt = rt;
    }

    /**
     * What the router computes: router = Family.Router ordinal (0 softmax→top-k, 1 top-k→softmax, 2 sigmoid grouped,
     * 3 top-k→sigmoid); renormalise over the k; weights rounded to the dtype (HF casts them); the two fixes; the
     * routed scaling; expert groups (1, 1: none).
     */
    public record RouteArgs(int T, int experts, int topK, int router, boolean renormalize, boolean weightsInDtype,
                            boolean softmaxBeforeTopk, boolean biasInWeights, float scale, int nGroup, int topkGroup,
                            boolean bf) {
        int flags(boolean forced) {
            return (renormalize ? 1 : 0) | (weightsInDtype ? 2 : 0) | (softmaxBeforeTopk ? 4 : 0) | (biasInWeights ? 8 : 0)
                    | (forced ? 16 : 0);
        }
    }

    /** The routing's device buffers: ids [T, k] int, idsF the same as floats (the "experts" probe), weights [T, k]. */
    public record Routing(CUdeviceptr ids, CUdeviceptr idsF, CUdeviceptr weights) {
    }

    /** The grouping: counts [E], offsets [E + 1], rowOf [T·k] (a slot's grouped row), slotOfRow [T·k] (the inverse). */
    public record Grouping(CUdeviceptr counts, CUdeviceptr offsets, CUdeviceptr rowOf, CUdeviceptr slotOfRow) {
    }

    /** Experts' weights W [E, N, K] (bf16 or fp32) and optional fp32 biases [E, N]. */
    public record Grouped(CUdeviceptr w, CUdeviceptr bias, int experts, int out, int in, boolean bf16) {
    }

    /** The experts' activation: kind = Activation ordinal; mode 0 act(gate)·up, 1 gpt-oss clamped SwiGLU, 2 unclamped. */
    public record ActArgs(int kind, boolean geluNew, int mode, float alpha, float limit, boolean bf) {
    }

    private static int blocks(long n, int per) {
        long b = (n + per - 1) / per;
        if (b > Integer.MAX_VALUE) throw new IllegalArgumentException("grid too large: " + n);
        return (int) Math.max(1, b);
    }

    private static int i(boolean b) {
        return b ? 1 : 0;
    }

    /**
     * Scores, selection and weights per token from logits [T, E]; {@code forced}: the experts are read from
     * r.idsF() (a teacher's) and only weighed. corrBias [E] (sigmoid routers) may be null.
     */
    public void route(CUdeviceptr logits, CUdeviceptr corrBias, Routing r, RouteArgs a, boolean forced) {
        if (a.T() == 0) return;
        if (a.experts() > MAX_EXPERTS || a.topK() > MAX_TOP_K || a.topkGroup() > MAX_TOP_K)
            throw new IllegalArgumentException("routing of " + a.experts() + " experts, top " + a.topK() + " exceeds "
                    + MAX_EXPERTS + " / " + MAX_TOP_K);
        int smem = 4 * (3 * a.experts() + a.nGroup());
        rt.launch("moe_route", a.T(), 1, 1, smem, logits, corrBias, r.idsF(), r.ids(), r.weights(), a.T(), a.experts(),
                a.topK(), a.router(), a.flags(forced), a.scale(), a.nGroup(), a.topkGroup(), i(a.bf()));
    }

    /**
     * Router logits C [T, E] = R(fp32(Σ a·w) + b) from the fp32 values of a (float64 sums, one fp32 rounding, the bias
     * added in fp32, then bf16 when {@code round}): one warp per logit.
     */
    public void router(CUdeviceptr c, Act a, DeviceKernels.Linear w, int T, boolean round) {
        long n = (long) T * w.out();
        if (n == 0) return;
        rt.launch("moe_router", blocks(32 * n, 256), 1, 256, 0, c, a.f32(), w.w(), i(w.bf16()), w.bias(), T, w.out(), w.in(), i(round));
    }

    /** Counting sort of the n = T·k slots by expert (deterministic: each expert's rows in slot order). */
    public void group(CUdeviceptr ids, int n, int experts, Grouping g) {
        int blocks = blocks(32L * experts, 256);
        rt.launch("moe_count", blocks, 1, 256, 0, ids, n, experts, g.counts());
        rt.launch("moe_place", blocks, 1, 256, 0, ids, n, experts, g.counts(), g.offsets(), g.rowOf(), g.slotOfRow());
    }

    /** xg [n, H] = each grouped row's token; weights non-null (Llama 4): scaled by the slot's weight, rounded. */
    public void gather(Act xg, CUdeviceptr x, Grouping g, CUdeviceptr weights, int n, int k, int H, boolean bf) {
        long total = (long) n * H;
        if (total == 0) return;
        rt.launch("moe_gather", blocks(total, 256), 1, 256, 0, xg.f32(), xg.bf16(), x, g.slotOfRow(), weights, n, k, H, i(bf));
    }

    /**
     * Which grouped kernel {@link #gemm} runs: "moe_gemm_mma", "moe_gemm_bf16w" or "moe_gemm_f32".
     * {@code -Dmodeldiff.cuda.moeGemm=ffma} makes bf16 use the FFMA kernel (moe_gemm_bf16w) everywhere (triage).
     */
    public static String gemmKernel(CUdeviceptr aB, Grouped w) {
        if (!w.bf16()) return "moe_gemm_f32";
        boolean ffma = "ffma".equalsIgnoreCase(System.getProperty("modeldiff.cuda.moeGemm", "mma"));
        return aB != null && w.in() % 8 == 0 && !ffma ? "moe_gemm_mma" : "moe_gemm_bf16w";
    }

    /**
     * C [n, out] = per expert e, the rows offsets[e]..offsets[e+1]) of A times W[e]ᵀ (+ bias[e], rounded separately):
     * one launch over every expert (a tile schedule over the experts' row ranges).
     */
    public void gemm(CUdeviceptr c, Act a, Grouped w, Grouping g, int n, boolean bf) {
        if (n == 0 || w.out() == 0) return;
        String kernel = gemmKernel(a.bf16(), w);
        if (kernel.equals("moe_gemm_mma"))
            rt.launch(kernel, blocks(n, 128) + w.experts(), blocks(w.out(), 256), 256, DeviceKernels.TC_SMEM, c, a.bf16(),
                    w.w(), w.bias(), g.offsets(), w.experts(), w.out(), w.in(), i(bf));
        else
            rt.launch(kernel, blocks(n, 64) + w.experts(), blocks(w.out(), 64), 256, 0, c, a.f32(), w.w(), w.bias(),
                    g.offsets(), w.experts(), w.out(), w.in(), i(bf));
    }

    /** out [rows, ff] (and its bf16 copy) from gu [rows, 2·ff] (gate | up). */
    public void act(Act out, CUdeviceptr gu, long rows, int ff, ActArgs a) {
        long n = rows * ff;
        if (n == 0) return;
        rt.launch("moe_act", blocks(n, 256), 1, 256, 0, out.f32(), out.bf16(), gu, rows, ff, a.kind(), i(a.geluNew()),
                a.mode(), a.alpha(), a.limit(), i(a.bf()));
    }

    /** out [T, H] = per token its experts' rows of y in ascending expert id, weighted, summed as HF does. */
    public void scatter(CUdeviceptr out, CUdeviceptr y, Grouping g, Routing r, int T, int k, int H, boolean sumFp32, boolean bf) {
        long n = (long) T * H;
        if (n == 0) return;
        rt.launch("moe_scatter", blocks(n, 256), 1, 256, 0, out, y, g.rowOf(), r.ids(), r.weights(), T, k, H, i(sumFp32), i(bf));
    }
}
