package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import modeldiff.forward.Fixes;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.MlpArgs;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.MoeSpec;
import modeldiff.model.MoeWeights;
import modeldiff.model.TensorStore;

import java.util.function.LongFunction;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * The MLP block of a MoE layer on the GPU, rounding as forward/lowp/LowpMoe does (docs/precision.md, MoE rounding
 * points; docs/cuda.md, "MoE"): router logits (float64 sums rounded once; sigmoid routers kept in fp32), one routing kernel
 * parametrised by the family's description ({@link MoeSpec}), a counting sort of the tokens' (token, choice) slots by
 * expert, gather, the experts' gate|up GEMM as one grouped launch over every expert, their activation, the grouped
 * down GEMM, and the weighted scatter-add in HF's order (per token: its experts in ascending id, each product rounded,
 * each add rounded; Llama 4: summed in fp32, rounded once), then the shared expert (the dense MLP kernels).
 */
final class CudaMoe {
    private CudaMoe() {
    }

    /** gpt-oss's SwiGLU constants (HF 5.17's GptOssExperts, which does not read config.swiglu_limit). */
    static final float GPT_OSS_ALPHA = 1.702f, GPT_OSS_LIMIT = 7.0f;

    /**
     * One MoE layer's weights on the device: the router (with its bias, gpt-oss), the experts' gate and up as one
     * [E, 2·ff, H] weight (gate rows first; gpt-oss's interleaved columns and Llama 4's [E, H, 2·ff] transposed on
     * upload), down [E, H, ff], gpt-oss's biases (fp32 [E, 2·ff] and [E, H], else null), the sigmoid routers'
     * selection-only correction bias [E] (fp32, or null), and the shared expert (or null).
     */
    record Weights(Linear router, MoeKernels.Grouped gateUp, MoeKernels.Grouped down, CUdeviceptr correctionBias,
                   Linear sharedGate, Linear sharedUp, Linear sharedDown, boolean gptOss) {
    }

    /** Device bytes of a model's experts, routers and shared experts (they stay resident, also when layers stream). */
    static long deviceBytes(Model model, int es) {
        long total = 0;
        for (int i = 0; i < model.config.numLayers; i++) total += layerBytes(model, i, es);
        return total;
    }

    /** Device bytes of layer i's experts, router and shared expert (0 for a dense layer). */
    static long layerBytes(Model model, int i, int es) {
        ModelConfig c = model.config;
        MoeSpec s = c.moe;
        if (s == null || !s.sparse(i)) return 0;
        long H = c.hiddenSize;
        return s.numExperts * H * es                                   // router
                + (long) s.numExperts * 3L * s.expertSize * H * es        // experts
                + (long) s.numExperts * (3L * s.expertSize + H) * 4       // biases (at most)
                + 3L * s.sharedSize * H * es;                             // shared expert
    }

    /** Uploads layer {@code w}'s weights into {@code dm} (owned by it). */
    static Weights upload(DeviceModel dm, MoeWeights w, ModelConfig c) {
        MoeSpec s = c.moe;
        int E = w.count(), H = c.hiddenSize, ff = s.expertSize;
        int es = dm.es();
        CUdeviceptr gu = dm.own(CudaRuntime.alloc((long) E * 2 * ff * H * es));
        CUdeviceptr dn = dm.own(CudaRuntime.alloc((long) E * H * ff * es));
        dm.bytes += (long) E * 3 * ff * H * es;
        CUdeviceptr guBias = null, dnBias = null;
        MoeWeights.Fused f = w.fused();
        for (int e = 0; e < E; e++) {
            dm.copyChunk(gu, (long) e * 2 * ff * H, gateUpOf(w, e, H, ff));
            dm.copyChunk(dn, (long) e * H * ff, downOf(w, e, H, ff));
        }
        double[] guB = gateUpBiasOf(w, E, ff), dnB = downBiasOf(w, E, H);
        if (guB != null) guBias = dm.vector(guB);
        if (dnB != null) dnBias = dm.vector(dnB);
        CUdeviceptr corr = w.correctionBias() == null ? null
                : dm.vectorFp32(TensorStore.readDoubles(w.correctionBias(), 0, E));
        MoeWeights.Expert sh = w.shared();
        return new Weights(dm.residentLinear(w.router()),
                new MoeKernels.Grouped(gu, guBias, E, 2 * ff, H, dm.bf16), new MoeKernels.Grouped(dn, dnBias, E, H, ff, dm.bf16),
                corr, sh == null ? null : dm.residentLinear(sh.gate()), sh == null ? null : dm.residentLinear(sh.up()),
                sh == null ? null : dm.residentLinear(sh.down()), f != null && f.interleaved());
    }

    /** Expert e's gate|up weight [2·ff, H] as the grouped GEMM reads it (C = A·Wᵀ), from whichever layout. */
    static double[] gateUpOf(MoeWeights w, int e, int H, int ff) {
        MoeWeights.Fused f = w.fused();
        if (f != null) return packGateUp(f.block(f.gateUp(), e, H, 2 * ff), H, ff, f.interleaved());
        double[] g = w.experts().get(e).gate().loadWeight(), u = w.experts().get(e).up().loadWeight();
        double[] t = java.util.Arrays.copyOf(g, g.length + u.length);
        System.arraycopy(u, 0, t, g.length, u.length);
        return t;
    }

    /** Expert e's down weight [H, ff]. */
    static double[] downOf(MoeWeights w, int e, int H, int ff) {
        MoeWeights.Fused f = w.fused();
        return f != null ? transpose(f.block(f.down(), e, ff, H), ff, H) : w.experts().get(e).down().loadWeight();
    }

    /** gpt-oss's gate_up biases as [E, 2·ff] in the packed row order, or null. */
    static double[] gateUpBiasOf(MoeWeights w, int E, int ff) {
        MoeWeights.Fused f = w.fused();
        if (f == null || f.gateUpBias() == null) return null;
        double[] b = TensorStore.readDoubles(f.gateUpBias(), 0, (long) E * 2 * ff), out = new double[b.length];
        for (int e = 0; e < E; e++)
            for (int col = 0; col < 2 * ff; col++) out[e * 2 * ff + outRow(col, ff, f.interleaved())] = b[e * 2 * ff + col];
        return out;
    }

    /** gpt-oss's down biases [E, H], or null. */
    static double[] downBiasOf(MoeWeights w, int E, int H) {
        MoeWeights.Fused f = w.fused();
        return f == null || f.downBias() == null ? null : TensorStore.readDoubles(f.downBias(), 0, (long) E * H);
    }

    /**
     * One expert's fused gate_up [H, 2·ff] (x @ W layout) as the [2·ff, H] weight the GEMM reads (C = A·Wᵀ): gate rows
     * first, then up. gpt-oss (interleaved): gate = gate_up[:, ::2], up = gate_up[:, 1::2]; Llama 4: gate_up.chunk(2).
     */
    static double[] packGateUp(double[] src, int H, int ff, boolean interleaved) {
        double[] t = new double[2 * ff * H];
        for (int h = 0; h < H; h++)
            for (int col = 0; col < 2 * ff; col++) t[outRow(col, ff, interleaved) * H + h] = src[h * 2 * ff + col];
        return t;
    }

    /** [rows, cols] → [cols, rows]. */
    static double[] transpose(double[] src, int rows, int cols) {
        double[] t = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = src[r * cols + c];
        return t;
    }

    /** Row of the [2·ff, H] gate|up weight that fused column {@code col} becomes. */
    static int outRow(int col, int ff, boolean interleaved) {
        return interleaved ? (col % 2 == 0 ? col / 2 : ff + col / 2) : col;
    }

    /** Device buffers of one forward's MoE blocks (part of CudaPass's workspace, allocated through it). */
    static final class Buffers {
        final CUdeviceptr logits;
        final MoeKernels.Routing routing;
        final MoeKernels.Grouping grouping;
        final Act xg, act, sact;
        final CUdeviceptr gu, y, sg, su, so;

        Buffers(ModelConfig c, int T, boolean bf16, LongFunction<CUdeviceptr> f, LongFunction<CUdeviceptr> h) {
            MoeSpec s = c.moe;
            int E = s.numExperts, k = s.topK, H = c.hiddenSize, ff = s.expertSize, S = Math.max(s.sharedSize, 1);
            long n = (long) T * k;
            logits = f.apply((long) T * E);
            routing = new MoeKernels.Routing(f.apply(n), f.apply(n), f.apply(n));
            grouping = new MoeKernels.Grouping(f.apply(E), f.apply(E + 1L), f.apply(n), f.apply(n));
            xg = new Act(f.apply(n * H), bf16 ? h.apply(n * H) : null);
            gu = f.apply(n * 2 * ff);
            act = new Act(f.apply(n * ff), bf16 ? h.apply(n * ff) : null);
            y = f.apply(n * H);
            sg = f.apply((long) T * S);
            su = f.apply((long) T * S);
            sact = new Act(f.apply((long) T * S), bf16 ? h.apply((long) T * S) : null);
            so = f.apply((long) T * H);
        }
    }

    /** What a MoE block needs from the forward it runs in. */
    record Step(DeviceKernels k, MoeKernels mk, Buffers b, ModelConfig c, int T, boolean bf, Fixes fixes, MlpArgs mlpArgs,
                ProbeCopier pc, DeviceTeacher teacher, boolean all) {
    }

    /**
     * out [T, H] = the MoE block of layer prefix {@code p} over m = mlp_norm(x) (with its bf16 copy in bf16 mode);
     * records (and in a forced run takes the teacher's) {@code router_logits} [T, E] and {@code experts} [T, k].
     */
    static void block(Step st, String p, Weights w, Act m, CUdeviceptr out) {
        MoeSpec s = st.c().moe;
        Buffers b = st.b();
        int T = st.T(), E = s.numExperts, k = s.topK, H = st.c().hiddenSize, ff = s.expertSize, n = T * k;
        boolean sigmoidGrouped = s.router == Family.Router.SIGMOID_GROUPED;
        // ROUTER_LOGITS in the dtype; DeepSeek / GLM: F.linear(h.float(), W.float()), kept in fp32. Summed in float64
        // (moe_router): the routing decision does not hang on an accumulation order
        st.mk().router(b.logits, m, w.router(), T, st.bf() && !sigmoidGrouped);
        if (st.all()) {
            st.pc().probe(p + "router_logits", b.logits, T, E, false);
            forceLogits(st, p + "router_logits", b.logits, T, E, sigmoidGrouped);
        }
        MoeKernels.RouteArgs ra = routeArgs(s, st.fixes(), T, st.bf());
        st.mk().route(b.logits, w.correctionBias(), b.routing, ra, false);
        if (st.all()) {
            st.pc().probe(p + "experts", b.routing.idsF(), T, k, false);
            if (forceExperts(st, p + "experts", b.routing.idsF(), T, k, E)) st.mk().route(b.logits, w.correctionBias(), b.routing, ra, true);
        }
        st.mk().group(b.routing.ids(), n, E, b.grouping);
        boolean scalesInput = s.scalesInput();   // Llama 4: routed_in = hidden * score, rounded (EXPERT_INPUT)
        st.mk().gather(b.xg, m.f32(), b.grouping, scalesInput ? b.routing.weights() : null, n, k, H, st.bf());
        st.mk().gemm(b.gu, b.xg, w.gateUp(), b.grouping, n, st.bf());
        int mode = w.gptOss() ? (st.fixes().mlpNoClamp ? 2 : 1) : 0;
        st.mk().act(b.act, b.gu, n, ff, new MoeKernels.ActArgs(st.mlpArgs().kind(), st.mlpArgs().geluNew(), mode,
                GPT_OSS_ALPHA, GPT_OSS_LIMIT, st.bf()));
        st.mk().gemm(b.y, b.act, w.down(), b.grouping, n, st.bf());
        st.mk().scatter(out, b.y, b.grouping, b.routing, T, k, H, scalesInput, st.bf());   // EXPERT_WEIGHTED, EXPERT_SUM
        if (w.sharedGate() != null) {                       // + shared_experts(residuals), one rounding
            int S = w.sharedGate().out();
            st.k().gemm(b.sg, m, w.sharedGate(), T, st.bf());
            st.k().gemm(b.su, m, w.sharedUp(), T, st.bf());
            st.k().mlpAct(b.sact, b.sg, b.su, (long) T * S, st.mlpArgs());
            st.k().gemm(b.so, b.sact, w.sharedDown(), T, st.bf());
            st.k().residualAdd(out, b.so, (long) T * H, st.bf());
        }
    }

    /** The routing kernel's arguments from the description and the fixes (as LowpMoe.route reads them). */
    static MoeKernels.RouteArgs routeArgs(MoeSpec s, Fixes fixes, int T, boolean bf) {
        return new MoeKernels.RouteArgs(T, s.numExperts, s.topK, s.router.ordinal(), fixes.renormalize(s), s.weightsInDtype,
                fixes.moeSoftmaxBeforeTopk, fixes.moeBiasInWeights, (float) fixes.routedScaling(s), s.nGroup, s.topkGroup, bf);
    }

    /** Teacher forcing of the router logits: rounded to the dtype, or (sigmoid routers, fp32 logits) as recorded. */
    private static void forceLogits(Step st, String probe, CUdeviceptr buf, int T, int E, boolean fp32) {
        if (!st.teacher().forced()) return;
        float[] v = fp32 ? st.teacher().exactValues(probe, T, E) : st.teacher().values(probe, T, E);
        if (v != null) cuMemcpyHtoD(buf, Pointer.to(v), 4L * v.length);
    }

    /** Teacher forcing of the chosen experts: whether the teacher had them (then they are in idsF, checked). */
    private static boolean forceExperts(Step st, String probe, CUdeviceptr idsF, int T, int k, int E) {
        if (!st.teacher().forced()) return false;
        float[] v = st.teacher().exactValues(probe, T, k);
        if (v == null) return false;
        for (float x : v)
            if (x != Math.rint(x) || x < 0 || x >= E)
                throw new BadInputException("teacher's " + probe + " holds " + x + ", not an expert id in [0, " + E + ")");
        cuMemcpyHtoD(idsF, Pointer.to(v), 4L * v.length);
        return true;
    }

    /** Why this pass cannot run a model's experts, or null. */
    static String refusal(Model model) {
        MoeSpec s = model.config.moe;
        if (s == null) return null;
        if (s.numExperts > MoeKernels.MAX_EXPERTS || s.topK > MoeKernels.MAX_TOP_K || s.topkGroup > MoeKernels.MAX_TOP_K)
            return s.numExperts + " experts, top " + s.topK + " (groups: top " + s.topkGroup + "): the routing kernel handles at most "
                    + MoeKernels.MAX_EXPERTS + " experts and top " + MoeKernels.MAX_TOP_K;
        return null;
    }
}
