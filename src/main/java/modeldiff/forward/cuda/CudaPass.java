package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import modeldiff.forward.Fixes;
import modeldiff.forward.Recorder;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.DeviceKernels.AttnArgs;
import modeldiff.forward.cuda.DeviceKernels.EmbedArgs;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.MlpArgs;
import modeldiff.forward.cuda.DeviceKernels.NormArgs;
import modeldiff.forward.cuda.DeviceKernels.RopeArgs;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Precision;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The forward pass on an NVIDIA GPU with modeldiff's own kernels (src/main/cuda), through JCuda's driver API.
 * cuda:fp32 computes in fp32 with FFMA GEMMs (a fast check against the float64 reference); cuda:bf16 stores weights
 * in bf16, runs GEMMs on tensor cores with fp32 accumulation and rounds each op's result to bf16 where HF's eager
 * path does (as forward/lowp does on the CPU), except inside attention, which is flash-style: probabilities are never
 * rounded. cuda:fp16 is cuda:bf16 with IEEE half in place of bfloat16 (weights, operand copies, every rounding point,
 * fp16 tensor-core GEMMs and attention), as lowp:fp16 is to lowp:bf16. Same probes as every pass; they are copied
 * back to the host per layer.
 */
public final class CudaPass implements ForwardPass {
    private final boolean bf16;   // a 16-bit pass: bf16, or fp16 when fp16
    private final boolean fp16;
    private final Fixes fixes;

    private static DeviceModel cached;   // one model's weights stay on the GPU between runs

    /** @throws BadInputException for a fix this pass cannot apply ({@link #refusal}), before any native call */
    public CudaPass(boolean bf16, Fixes fixes) {
        this(bf16 ? Precision.BF16 : Precision.FP32, fixes);
    }

    /** cuda:fp32, cuda:bf16 or cuda:fp16 (an IllegalArgumentException for any other precision). */
    public CudaPass(Precision p, Fixes fixes) {
        if (p != Precision.FP32 && p != Precision.BF16 && p != Precision.FP16)
            throw new IllegalArgumentException("cuda runs in fp32, bf16 or fp16, not " + p.id());
        this.bf16 = p != Precision.FP32;
        this.fp16 = p == Precision.FP16;
        this.fixes = fixes;
        String why = refusal(fixes);
        if (why != null) throw new BadInputException(name() + " cannot honour fix " + why);
    }

    /**
     * Why this pass cannot apply one of {@code fixes}, or null when it applies them all. softmax.lowp rounds the
     * exponentials and their sum to the dtype; every attention kernel here keeps them in fp32 registers (the flash
     * ones never even form the normalised probabilities), so the fix would be silently ignored.
     */
    static String refusal(Fixes fixes) {
        if (fixes.softmaxLowp)
            return "softmax.lowp: its attention kernels keep the softmax's exponentials and sum in fp32; use lowp or torch (docs/cuda.md)";
        return null;
    }

    /**
     * What the cuda pass cannot run: MoE blocks beyond the routing kernel's limits (CudaMoe.refusal), unless
     * {@code attentionOnly} (a forced run checking attention layer by layer, MoE blocks taken from the teacher). Every
     * attention of the families (sinks, chunks, Llama 4, MLA) runs.
     */
    static void refuseUnsupported(String pass, modeldiff.model.Model model, boolean attentionOnly) {
        if (attentionOnly || model.config.moe == null) return;
        String why = CudaMoe.refusal(model);   // the MoE blocks run (CudaMoe) unless their sizes pass its limits
        if (why != null) throw new BadInputException(pass + " cannot run this model's experts: " + why);
    }

    @Override
    public String name() {
        return !bf16 ? "cuda:fp32" : fp16 ? "cuda:fp16" : "cuda:bf16";
    }

    /** The pass's dtype. */
    public Precision precision() {
        return !bf16 ? Precision.FP32 : fp16 ? Precision.FP16 : Precision.BF16;
    }

    @Override
    public String dtype() {
        return precision().id();
    }

    /** The runtime, or a BadInputException "cuda:bf16 unavailable: reason". */
    CudaRuntime runtime() {
        CudaRuntime rt = CudaRuntime.get();
        if (rt == null) throw new BadInputException(name() + " unavailable: " + CudaRuntime.unavailableReason());
        return rt;
    }

    /**
     * What this pass refuses by name rather than compute wrong: qk_norm.per_head on a whole-projection q/k norm (its
     * norm kernel takes one weight slice per row width); MLA heads wider than 256.
     */
    static void refuseUnimplemented(Model model, Fixes fixes) {
        String moe = CudaMoe.refusal(model);
        if (moe != null) throw new BadInputException("the cuda pass cannot run this model's experts: " + moe);
        if (fixes.qkNormPerHead && model.family.qkNormScope == Family.QkNormScope.FULL)
            throw new BadInputException("the cuda pass is not available for qk_norm.per_head (a whole-projection q/k norm"
                    + " taken per head): not implemented yet; use reference, lowp or torch");
        if (model.config.mla != null)   // MLA heads wider than the attention kernels take, before any allocation
            CudaAttentionVariants.mlaWidth(model.config.mla.qkHeadDim(), model.config.mla.vHeadDim());
    }

    @Override
    public Trace run(Model model, ForwardInput input, ProbeLevel level) {
        refuseUnimplemented(model, fixes);
        refuseUnsupported(name(), model, attentionOnly);
        if (fp16 && model.config.moe != null && !attentionOnly)
            throw new BadInputException("cuda:fp16 does not run MoE models yet (its expert kernels round to bf16 or fp32 only); "
                    + "use cuda:bf16, cuda:fp32, lowp:fp16 or torch:fp16");
        if (attentionOnly && !input.forced())
            throw new IllegalStateException("attentionOnly skips the MoE blocks: only a teacher-forced run continues right");
        CudaRuntime rt = runtime();
        if (model.config.moe != null && rt.moeFailure != null)
            throw new BadInputException(name() + " unavailable for MoE models: the MoE kernels did not load (" + rt.moeFailure + ")");
        DeviceModel dm = weights(model);
        int[] tokens = fixes.tokens(input.tokens(), model.config);
        Trace trace = new Trace("modeldiff " + name() + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(),
                "cuda (" + rt.deviceName + ")", tokens, input.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        if (dm.streamed()) trace.putExtra("cuda_weights", "streamed layer by layer");
        if (dm.split()) trace.putExtra("cuda_devices", dm.placement.describe());
        Recorder rec = Recorder.of(trace, input.withTokens(tokens), level);
        forward(rt, dm, tokens, input.positionOffset(), level, (name, cols, data) -> trace.put(name, cols, widen(data)),
                DeviceTeacher.of(rec, precision()));
        return trace;
    }

    /** Test hook: stream the layers (maxWeightBytes applies only when not forced). */
    boolean forceStreamed;

    /**
     * Self-test hook: MoE layers skip their MLP block, so that a teacher-forced run checks every attention probe layer
     * by layer before the MoE blocks exist here (the forced layer output carries the run on).
     */
    boolean attentionOnly;

    /** Test hook: the attention kernel (null: -Dmodeldiff.cuda.attention, default tc). */
    DeviceKernels.AttentionVariant attention;
    /** The GEMM kernel, when not the default ({@link DeviceKernels#defaultGemm}): the self-test's gemm_wgmma_ws run. */
    DeviceKernels.GemmVariant gemm;

    /** The device list property: comma-separated CUDA ordinals the layers may be spread over (issue #18). */
    public static final String DEVICES = "modeldiff.cuda.devices";

    /** -Dmodeldiff.cuda.devices (null: device 0 alone, today's behaviour). */
    private final int[] devices = LayerPlacement.parseDevices(System.getProperty(DEVICES));

    /**
     * Test hook (issue #18's one-GPU proof): the layers split at this boundary (0 … layers) over two slots, those of
     * {@link #DEVICES} when it lists two, else two contexts of device 0 ("0,0"); null: the device list's own plan.
     */
    Integer splitAt;

    /** The cached model's layout: the device list and forced split it was uploaded for. */
    private static String cachedLayout;

    private String layout() {
        return java.util.Arrays.toString(devices) + "@" + splitAt;
    }

    private synchronized DeviceModel weights(Model model) {
        synchronized (CudaPass.class) {
            if (cached != null && cached.key == model && cached.precision() == precision() && (!forceStreamed || cached.streamed())
                    && layout().equals(cachedLayout))
                return cached;
            if (cached != null) cached.close();
            cached = null;
            cached = splitAt != null ? forcedSplit(model, splitAt) : DeviceModel.upload(model, precision(), devices, forceStreamed);
            cachedLayout = layout();
            return cached;
        }
    }

    /** The model split at layer boundary b (layers [0, b) with the embedding, [b, L) with the head) over two slots. */
    private DeviceModel forcedSplit(Model model, int b) {
        int L = model.config.numLayers;
        if (b < 0 || b > L) throw new IllegalArgumentException("split at " + b + ": the boundaries are 0 … " + L);
        int[] ords = devices != null && devices.length == 2 ? devices : new int[]{0, 0};
        LayerPlacement.Split plan = new LayerPlacement.Split(List.of(new LayerPlacement.Range(0, 0, b), new LayerPlacement.Range(1, b, L)),
                new long[2]);
        return ResidentModel.upload(model, precision(), new DeviceModel.Placement(CudaRuntime.devices(ords), plan));
    }

    /** Frees the weights kept between runs (the next run uploads them again, resident when they fit). */
    static void forgetWeights() {
        synchronized (CudaPass.class) {
            if (cached != null) cached.close();
            cached = null;
            cachedLayout = null;
        }
    }

    /** Receives each probe as it reaches the host: name, width, [tokens × width] values (valid during the call only). */
    public interface ProbeSink {
        void accept(String name, int cols, FloatBuffer data);
    }

    /** Device buffers of one forward, kept with the model between runs (reallocated for more tokens). */
    static final class Workspace implements AutoCloseable {
        final CudaRuntime rt;
        final int T;
        final List<CUdeviceptr> all = new ArrayList<>();
        CUdeviceptr ids, x, a, o, ao, q, k, v, att, g, u, act, logits;
        CUdeviceptr aB, attB, actB, qB, kB, vB;   // bf16 copies (bf16 mode)
        final CudaAttentionVariants.Buffers variants;
        final CudaMoe.Buffers moe;                  // MoE blocks' buffers (null for a dense model)
        final ProbeCopier copier;
        CudaGraph graph;   // the probes-off forward captured for these buffers (-Dmodeldiff.cuda.graphs)

        Workspace(CudaRuntime rt, ModelConfig c, int T, boolean bf16) {
            this(rt, c, T, bf16, true);
        }

        /** In rt's context (current); {@code head}: the slot that runs the LM head (the others have no logits buffer). */
        Workspace(CudaRuntime rt, ModelConfig c, int T, boolean bf16, boolean head) {
            this.rt = rt;
            this.T = T;
            int H = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize;
            ids = f(T);
            x = f((long) T * H);
            a = f((long) T * H);
            o = f((long) T * H);
            ao = f((long) T * H);   // a parallel block's attention output while its MLP runs
            q = f((long) T * qd);
            k = f((long) T * kvd);
            v = f((long) T * kvd);
            att = f((long) T * qd);
            g = f((long) T * ff);
            u = f((long) T * ff);
            act = f((long) T * ff);
            logits = head ? f((long) T * c.vocabSize) : null;
            if (bf16) {
                aB = h((long) T * H);
                attB = h((long) T * qd);
                actB = h((long) T * ff);
                qB = h((long) T * qd);
                kB = h((long) T * kvd);
                vB = h((long) T * kvd);
            }
            variants = new CudaAttentionVariants.Buffers(c, T, bf16, new CudaAttentionVariants.Alloc() {
                public CUdeviceptr f(long n) {
                    return Workspace.this.f(n);
                }

                public CUdeviceptr h(long n) {
                    return Workspace.this.h(n);
                }

                public CUdeviceptr zeros(long n) {
                    CUdeviceptr p = f(n);
                    jcuda.driver.JCudaDriver.cuMemsetD32(p, 0, n);
                    return p;
                }

                public CUdeviceptr ones(long n) {
                    CUdeviceptr p = f(n);
                    jcuda.driver.JCudaDriver.cuMemsetD32(p, Float.floatToIntBits(1f), n);
                    return p;
                }
            });
            moe = c.moe == null ? null : new CudaMoe.Buffers(c, T, bf16, this::f, this::h);
            copier = new ProbeCopier(rt);
        }

        private CUdeviceptr f(long n) {
            CUdeviceptr p = CudaRuntime.alloc(n * 4);
            all.add(p);
            return p;
        }

        private CUdeviceptr h(long n) {
            CUdeviceptr p = CudaRuntime.alloc(n * 2);
            all.add(p);
            return p;
        }

        @Override
        public void close() {
            rt.makeCurrent();   // a split model's slot: its buffers, its copier, its synchronisation
            if (graph != null) graph.close();
            graph = null;
            copier.close();
            CudaRuntime.sync();
            for (CUdeviceptr p : all) CudaRuntime.free(p);
            all.clear();
        }
    }

    /** A split model's workspaces, one per slot the plan uses, each in its slot's context (kept with the model). */
    static final class SplitWorkspaces implements AutoCloseable {
        final int T;
        final List<Workspace> parts = new ArrayList<>();

        SplitWorkspaces(DeviceModel dm, int T) {
            this.T = T;
            List<CudaRuntime> used = dm.placement.used();
            try {
                for (int j = 0; j < used.size(); j++) {
                    CudaRuntime.use(used.get(j));
                    parts.add(new Workspace(used.get(j), dm.config, T, dm.bf16, j == used.size() - 1));
                }
            } catch (RuntimeException | Error e) {
                close();
                throw e;
            } finally {
                CudaRuntime.use(null);
            }
        }

        Workspace head() {
            return parts.get(parts.size() - 1);
        }

        @Override
        public void close() {
            try {
                for (Workspace w : parts) w.close();
                parts.clear();
            } finally {
                CudaRuntime.use(null);
            }
        }
    }

    private SplitWorkspaces splitWorkspaces(DeviceModel dm, int T) {
        if (dm.workspace instanceof SplitWorkspaces w && w.T >= T) return w;
        if (dm.workspace != null) {
            try {
                dm.workspace.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            dm.workspace = null;
        }
        SplitWorkspaces w = new SplitWorkspaces(dm, T);
        dm.workspace = w;
        return w;
    }

    private Workspace workspace(CudaRuntime rt, DeviceModel dm, int T) {
        if (dm.workspace instanceof Workspace w && w.T >= T) return w;
        if (dm.workspace != null) {
            try {
                dm.workspace.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        Workspace w = new Workspace(rt, dm.config, T, dm.bf16);
        dm.workspace = w;
        return w;
    }

    /** Rows of the LM head computed (and copied back) per step, so the logits' copy overlaps the rest. */
    static final int LOGIT_CHUNKS = 4;

    /**
     * The forward pass over device weights; {@code sink} null = copy nothing back (timing). Kernels run on the legacy
     * default stream; probes are copied to page-locked host memory on a second stream while later layers compute
     * ({@link ProbeCopier}); every probe has reached the sink when this returns.
     */
    public void forward(CudaRuntime rt, DeviceModel dm, int[] tokens, long positionOffset, ProbeLevel level, ProbeSink sink) {
        forward(rt, dm, tokens, positionOffset, level, sink, DeviceTeacher.NONE);
    }

    /** As above; {@code teacher} forces each recorded probe (teacher forcing, {@link DeviceTeacher}). */
    void forward(CudaRuntime rt, DeviceModel dm, int[] tokens, long positionOffset, ProbeLevel level, ProbeSink sink,
                 DeviceTeacher teacher) {
        ModelConfig c = dm.config;
        int T = tokens.length, V = c.vocabSize;
        if (T == 0) throw new BadInputException("no tokens");
        for (int t = 0; t < T; t++)
            if (tokens[t] < 0 || tokens[t] >= V)
                throw new BadInputException("token id " + tokens[t] + " at index " + t + " is outside the vocabulary [0, " + V + ")");
        if (positionOffset + T > Integer.MAX_VALUE) throw new BadInputException("positions beyond 2^31 are not supported on cuda");
        if (dm.positions != null && positionOffset + T > c.maxPositionEmbeddings)
            throw new BadInputException("position " + (positionOffset + T - 1) + " is beyond the model's " + c.maxPositionEmbeddings
                    + " learned positions");
        if (c.headDim > DeviceKernels.ATTN_MAX_HEAD_DIM)
            throw new BadInputException(name() + ": head_dim " + c.headDim + " > " + DeviceKernels.ATTN_MAX_HEAD_DIM);
        if (dm.split()) {
            splitForward(dm, tokens, (int) positionOffset, level, sink, teacher);
            return;
        }
        Workspace ws = workspace(rt, dm, T);
        if (sink == null && !teacher.forced() && !dm.streamed() && !variantModel(c) && (graphs != null ? graphs : CudaGraph.enabled())) {
            graphForward(rt, dm, ws, tokens, (int) positionOffset);
            return;
        }
        Run run = new Run(rt, dm, ws, T, (int) positionOffset, level == ProbeLevel.ALL, teacher);
        run.begin(sink);
        try {
            cuMemcpyHtoD(ws.ids, Pointer.to(tokens), 4L * T);
            run.uploadRopeTables();
            dm.startForward();
            run.embed();
            for (int i = 0; i < c.numLayers; i++) run.layer(i);
            run.head(sink == null);
            run.pc.drain();
            CudaRuntime.sync();
        } finally {
            run.freeRopeTables();
        }
    }

    /**
     * The forward over a model split across device slots: each slot runs its layers with its own runtime (context,
     * modules, split-K scratch), kernels, workspace, RoPE tables and probe copier; at each boundary the residual
     * stream x [T, H] (all that a layer reads from the one before it) is copied to the next slot's workspace by
     * {@link CudaRuntime#peerCopy}. The first slot embeds, the last runs the final norm and LM head. Each slot's
     * probes are delivered before the next slot starts, so the sink sees them in the single-device order. Teacher
     * forcing acts on the slot's own buffers, as on one device.
     */
    private void splitForward(DeviceModel dm, int[] tokens, int pos0, ProbeLevel level, ProbeSink sink, DeviceTeacher teacher) {
        int T = tokens.length;
        SplitWorkspaces sw = splitWorkspaces(dm, T);
        List<LayerPlacement.Range> ranges = dm.placement.plan().ranges();
        List<CudaRuntime> used = dm.placement.used();
        Run[] runs = new Run[ranges.size()];
        int last = ranges.size() - 1;
        try {
            for (int j = 0; j <= last; j++) {
                CudaRuntime rt = used.get(j);
                LayerPlacement.Range r = ranges.get(j);
                if (j > 0) {
                    runs[j - 1].pc.drain();   // the previous slot's probes first: the sink's order is one device's
                    CudaRuntime.peerCopy(runs[j - 1].rt, sw.parts.get(j - 1).x, rt, sw.parts.get(j).x, 4L * T * dm.config.hiddenSize);
                }
                CudaRuntime.use(rt);
                Run run = runs[j] = new Run(rt, dm, sw.parts.get(j), T, pos0, level == ProbeLevel.ALL, teacher);
                run.begin(sink, r.count(), j == 0, j == last);
                run.uploadRopeTables();
                if (j == 0) {
                    cuMemcpyHtoD(sw.parts.get(0).ids, Pointer.to(tokens), 4L * T);
                    run.embed();
                }
                for (int i = r.first(); i < r.end(); i++) run.layer(i);
                if (j == last) run.head(sink == null);
            }
            runs[last].pc.drain();
            for (CudaRuntime rt : used) rt.synchronize();
        } finally {
            for (Run run : runs) {
                if (run == null) continue;
                CudaRuntime.use(run.rt);
                run.freeRopeTables();
            }
            CudaRuntime.use(null);
        }
    }

    /**
     * Models whose forward has MoE blocks or an attention variant (sinks, MLA, Llama 4): no CUDA graph is captured for
     * them (their kernels were not checked under capture: CudaSelfTest runs the graph check on the other families).
     */
    static boolean variantModel(ModelConfig c) {
        return c.moe != null || c.mla != null || c.family.attentionSinks || c.family.llama4Attention;
    }

    /** Test / bench hook: CUDA graphs for probes-off forwards (null: -Dmodeldiff.cuda.graphs, default off). */
    Boolean graphs;

    /**
     * The residual add fused into the o_proj / down_proj GEMM epilogue where nothing comes between them (no post-norm,
     * no parallel residual, not teacher-forced): -Dmodeldiff.cuda.fuseResidual=true, default off until measured.
     * The same values as unfused (the self-test compares every probe).
     */
    boolean fuseResidual = Boolean.getBoolean("modeldiff.cuda.fuseResidual");

    /**
     * A probes-off forward replayed from a CUDA graph ({@link CudaGraph}), captured on first use for this workspace,
     * token count and offset (after one ordinary forward, which sizes the split-K scratch and loads every kernel).
     * The logits are left in the workspace. Bit-identical to the ordinary forward: the same launches in the same order.
     */
    private void graphForward(CudaRuntime rt, DeviceModel dm, Workspace ws, int[] tokens, int pos0) {
        int T = tokens.length;
        CudaGraph.Key key = new CudaGraph.Key(T, pos0, SplitK.generation(), dm.fp16);
        if (ws.graph == null || !ws.graph.key.equals(key)) {
            if (ws.graph != null) ws.graph.close();
            ws.graph = null;
            Run warm = new Run(rt, dm, ws, T, pos0, false, DeviceTeacher.NONE);
            warm.begin(null);
            cuMemcpyHtoD(ws.ids, Pointer.to(tokens), 4L * T);
            try {
                warm.uploadRopeTables();
                warm.embed();
                for (int i = 0; i < dm.config.numLayers; i++) warm.layer(i);
                warm.head(true);
                CudaRuntime.sync();
            } finally {
                warm.freeRopeTables();
            }
            Run run = new Run(rt, dm, ws, T, pos0, false, DeviceTeacher.NONE);
            run.begin(null);
            run.uploadRopeTables();   // kept by the graph, which reads them at every replay
            List<CUdeviceptr> tables = new ArrayList<>();
            for (RopeArgs r : run.ropes.values()) tables.add(r.invFreq());
            key = new CudaGraph.Key(T, pos0, SplitK.generation(), dm.fp16);
            ws.graph = CudaGraph.capture(rt, key, () -> {
                run.embed();
                for (int i = 0; i < dm.config.numLayers; i++) run.layer(i);
                run.head(true);
            }, tables);
        }
        cuMemcpyHtoD(ws.ids, Pointer.to(tokens), 4L * T);
        CudaRuntime.sync();   // a pageable upload may still be in flight on the legacy stream; the graph's stream does not wait for it
        ws.graph.launch();
    }

    /** Test hook: the logits of a probes-off forward (graphs or not, as {@link #graphs} says), from the workspace. */
    float[] logitsWithoutProbes(Model model, int[] tokens) {
        CudaRuntime rt = runtime();
        DeviceModel dm = weights(model);
        forward(rt, dm, tokens, 0, ProbeLevel.LAYERS, null);
        return workspaceLogits(dm, tokens.length);
    }

    /** The logits the last forward over dm left in its workspace (T rows). */
    static float[] workspaceLogits(DeviceModel dm, int T) {
        if (dm.workspace instanceof SplitWorkspaces sw) {
            try {
                sw.head().rt.makeCurrent();
                return CudaRuntime.download(sw.head().logits, Math.multiplyExact(T, dm.config.vocabSize));
            } finally {
                CudaRuntime.use(null);
            }
        }
        Workspace ws = (Workspace) dm.workspace;
        return CudaRuntime.download(ws.logits, Math.multiplyExact(T, dm.config.vocabSize));
    }

    /**
     * One forward's state: sizes, the fixes' answers as kernel arguments, device buffers, probe copies and forcing.
     * Its methods are the forward's steps in order: embed, then per layer the attention block and the MLP block, then
     * the final norm and the LM head.
     */
    private final class Run {
        final CudaRuntime rt;
        final DeviceModel dm;
        final ModelConfig c;
        final Family f;
        final DeviceKernels k;
        final MoeKernels mk;
        final Workspace ws;
        final ProbeCopier pc;
        final DeviceTeacher teacher;
        final int T, H, hd, qd, kvd, ff, V, pos0;
        final boolean all, bf, fp16, tcAtt;
        final NormArgs normArgs;
        final MlpArgs mlpArgs;
        final Act a, att, act;   // norm output, attention output, MLP activation (each with its bf16 copy in bf16 mode)
        final Map<RopeSpec, RopeArgs> ropes = new HashMap<>();

        Run(CudaRuntime rt, DeviceModel dm, Workspace ws, int T, int pos0, boolean all, DeviceTeacher teacher) {
            this.rt = rt;
            this.dm = dm;
            this.c = dm.config;
            this.f = c.family;
            this.k = new DeviceKernels(rt);
            this.mk = new MoeKernels(rt);
            k.fp16 = dm.fp16;
            if (attention != null) k.attention = attention;
            if (gemm != null) k.gemm = gemm;
            this.ws = ws;
            this.pc = ws.copier;
            this.teacher = teacher;
            this.T = T;
            this.pos0 = pos0;
            this.all = all;
            this.bf = dm.bf16;
            this.fp16 = dm.fp16;
            H = c.hiddenSize;
            hd = c.headDim;
            qd = c.qDim();
            kvd = c.kvDim();
            ff = c.intermediateSize;
            V = c.vocabSize;
            boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
            normArgs = new NormArgs((float) fixes.eps(c), f.norm.centered(), fixes.unitOffset(f.norm), weightThenCast, bf);
            mlpArgs = new MlpArgs(fixes.activation(c).ordinal(),
                    !fixes.activationOverridden() && "gelu_new".equals(c.activationName), bf);
            tcAtt = bf && k.tcAttention(hd);
            a = new Act(ws.a, ws.aB);
            att = new Act(ws.att, ws.attB);
            act = new Act(ws.act, ws.actB);
        }

        /** Sizes the probe rings for one forward. */
        void begin(ProbeSink sink) {
            begin(sink, c.numLayers, true, true);
        }

        /** As above for a slot of a split model: {@code layers} of them, with the embedding and / or the head. */
        void begin(ProbeSink sink, int layers, boolean embeds, boolean head) {
            long TH = 4L * T * H, logitBytes = head ? 4L * T * V : 0;
            long wq = c.mla != null ? c.mla.qkDim(c.numHeads) : qd, wv = c.mla != null ? c.mla.vDim(c.numHeads) : kvd;
            long moeCols = c.moe == null ? 0 : c.moe.numExperts + c.moe.topK;   // router_logits, experts
            long layerNeed = all ? 4L * T * (4L * H + 2L * wq + 2L * Math.max(wv, kvd) + ff + moeCols) : 0;
            long hostNeed = TH * (layers + (embeds ? 1 : 0) + (head ? 1 : 0)) + logitBytes + layers * layerNeed;
            long largestStaged = all ? Math.max(TH, 4L * T * Math.max(Math.max(ff, moeCols), Math.max(Math.max(qd, wq), Math.max(kvd, wv)))) : TH;
            pc.begin(sink, hostNeed, Math.max(logitBytes, largestStaged), TH * (layers + 1) + layers * layerNeed,
                    largestStaged);
        }

        /** Records a probe of buf [T, cols]; in a forced run, buf (and its bf16 copy) then holds the teacher's value. */
        void probe(String name, Act buf, int cols) {
            // a forced buffer is overwritten next, so even a "stable" probe is snapshotted first
            pc.probe(name, buf.f32(), T, cols, name.equals("final_norm") && !teacher.forced());
            teacher.force(name, buf, T, cols, k);
        }

        /** A sub-layer probe: recorded (and forced) only at ProbeLevel.ALL. */
        void subProbe(String name, Act buf, int cols) {
            if (all) probe(name, buf, cols);
        }

        /** RoPE inverse frequencies, once per distinct spec, uploaded before the layers (no host stalls inside). */
        void uploadRopeTables() {
            if (f.learnedPositions) return;
            for (int i = 0; i < c.numLayers; i++) {
                RopeSpec rope = fixes.layerRope(c.layers.get(i), c);     // null: a NoPE layer
                if (rope == null || ropes.containsKey(rope)) continue;
                int rot = Rope.rotaryDim(hd, rope.partialRotaryFactor());
                long end = (long) pos0 + T;
                // fp32 as HF computes the table (lowp.RopeTable; cuda:fp32 too: the float64 formulas are the reference's)
                modeldiff.forward.lowp.RopeTable.Fp32 fr = modeldiff.forward.lowp.RopeTable.of(rope, rot, end);
                float[] inv = fr.invFreq().clone();
                if (bf && fixes.ropeInvFreqLowp) for (int j = 0; j < inv.length; j++) inv[j] = CudaRuntime.round16(inv[j], fp16);
                ropes.put(rope, new RopeArgs(hd, inv.length, CudaRuntime.upload(inv), pos0, (float) fr.attentionScaling(),
                        CudaAttentionVariants.ropePairs(f, fixes), fixes.ropeBf16Angles, bf, CudaAttentionVariants.ropeCosSinFp32(f)));
            }
        }

        void freeRopeTables() {
            for (RopeArgs r : ropes.values()) CudaRuntime.free(r.invFreq());
        }

        /** Gemma scales by sqrt(hidden) rounded to the dtype (embed.scale_fp32: the fp32 constant); GPT-2 adds positions. */
        void embed() {
            double scale = fixes.embedScale(c);
            float scaleF = bf && !fixes.embedScaleFp32 ? CudaRuntime.round16((float) scale, fp16) : (float) scale;
            k.embed(ws.x, dm.embedding, bf, ws.ids, new EmbedArgs(T, H, scaleF, scale != 1.0, bf));
            if (dm.positions != null) k.addPositions(ws.x, dm.positions, T, H, pos0, bf);
            probe("embed", Act.of(ws.x), H);
        }

        void layer(int i) {
            dm.acquire(i);
            DeviceModel.Layer w = dm.layers.get(i);
            LayerSpec spec = c.layers.get(i);
            String p = "layers." + i + ".";
            attentionBlock(p, w, spec);
            if (!(attentionOnly && c.moe != null && c.moe.sparse(i))) mlpBlock(p, w, dm.moe(i));   // else forced from the teacher
            dm.release(i);
            probe("layers." + i, Act.of(ws.x), H);
            pc.poll();
        }

        /** x += [post-norm] o_proj(attention(rope(q, k), v)) of attn_norm(x). */
        private void attentionBlock(String p, DeviceModel.Layer w, LayerSpec spec) {
            normOrCopy(a, ws.x, w.attnNorm());
            subProbe(p + "attn_norm", a, H);
            Act attOut = dm.mla(spec.index()) != null ? mla(p, spec) : denseAttention(p, w, spec);
            subProbe(p + "attn", attOut, attOut == att ? qd : c.mla.vDim(c.numHeads));
            boolean fuse = fuseResidual && w.postAttnNorm() == null && !fixes.parallelResidual(c) && !teacher.forced();
            if (fuse) k.gemmAdd(ws.o, attOut, w.o(), T, bf, ws.x);   // x += o in the GEMM's epilogue (o is still written)
            else k.gemm(ws.o, attOut, w.o(), T, bf);
            subProbe(p + "attn_out", Act.of(ws.o), H);
            if (fuse) return;
            if (w.postAttnNorm() != null) k.norm(Act.of(ws.o), ws.o, w.postAttnNorm(), T, normArgs);
            if (fixes.parallelResidual(c)) k.copy(ws.ao, ws.o, (long) T * H);   // GPT-NeoX: the MLP reads the block's input too
            else k.residualAdd(ws.x, ws.o, (long) T * H, bf);
        }

        /** DeepSeek-V3's multi-head latent attention (CudaAttentionVariants.mla records q, k, v; attn is recorded by the caller). */
        private Act mla(String p, LayerSpec spec) {
            CudaAttentionVariants.Buffers b = ws.variants;
            RopeSpec layerRope = fixes.layerRope(spec, c);
            RopeArgs r = layerRope == null ? null : ropes.get(layerRope);
            if (r != null) r = new RopeArgs(r.headDim(), r.half(), r.invFreq(), r.pos0(), r.scaling(), false, r.bf16Angles(), r.bf(),
                    r.cosSinFp32());   // halves: MLA's own interleave is undone first
            var step = new CudaAttentionVariants.MlaStep(CudaAttentionVariants.Kernels.of(k), T, bf, CudaAttentionVariants.latentNorm(f, fixes, bf), r,
                    CudaAttentionVariants.mlaAttnArgs(c, spec, fixes, T, b, bf), this::subProbe);
            return CudaAttentionVariants.mla(step, dm.mla(spec.index()), a, b, c.mla, c.numHeads, p);
        }

        /** q/k/v projections, q/k norms, RoPE (and Llama 4's extras), attention into att. */
        private Act denseAttention(String p, DeviceModel.Layer w, LayerSpec spec) {
            k.gemm(ws.q, a, w.q(), T, bf);
            k.gemm(ws.k, a, w.k(), T, bf);
            k.gemm(ws.v, a, w.v(), T, bf);
            if (f.qkNorm && !fixes.qkNormOff) {
                // per head (a weight of head_dim) or over the whole projection (OLMo 2)
                k.norm(Act.of(ws.q), ws.q, w.qNorm(), w.qNorm().dim() == hd ? T * c.numHeads : T, normArgs);
                k.norm(Act.of(ws.k), ws.k, w.kNorm(), w.kNorm().dim() == hd ? T * c.numKvHeads : T, normArgs);
            }
            RopeSpec layerRope = f.learnedPositions ? null : fixes.layerRope(spec, c);
            if (layerRope != null) {
                RopeArgs rope = ropes.get(layerRope);
                k.rope(ws.q, T, c.numHeads, rope);
                k.rope(ws.k, T, c.numKvHeads, rope);
            }
            if (spec.llama4() != null)
                CudaAttentionVariants.llama4AfterRope(CudaAttentionVariants.Kernels.of(k), ws.variants, ws.q, ws.k, T, c, spec, fixes, pos0, bf);
            subProbe(p + "q", Act.of(ws.q), qd);
            subProbe(p + "k", Act.of(ws.k), kvd);
            subProbe(p + "v", Act.of(ws.v), kvd);
            attention(spec);
            return att;
        }

        /** The norm, or (OLMo 2's missing pre-norms) the input itself, with its bf16 copy for the GEMMs. */
        private void normOrCopy(Act out, CUdeviceptr in, DeviceKernels.Norm n) {
            if (n != null) {
                k.norm(out, in, n, T, normArgs);
                return;
            }
            k.copy(out.f32(), in, (long) T * H);
            if (out.bf16() != null) k.toBf16(out.bf16(), out.f32(), (long) T * H);
        }

        /** att = softmax(q·kᵀ·scale [soft-capped], causal [sliding]) · v, on tensor cores where the head_dim allows. */
        private void attention(LayerSpec spec) {
            boolean divide = bf && f.scoreScaleByDivision && !fixes.attnScaleOverridden();
            // GPT-2 in bf16: / sqrt(d) when scale_attn_weights (bit 1), then / (layer + 1) when
            // scale_attn_by_inverse_layer_idx (bit 2, the divisor passed as the scale); neither: multiply by 1.
            int divideMode = !divide ? 0 : (c.scaleAttnWeights ? 1 : 0) | (c.scaleAttnByInverseLayer ? 2 : 0);
            float scale = (divideMode & 2) != 0 ? spec.index() + 1 : (float) fixes.attnScale(spec);
            AttnArgs args = CudaAttentionVariants.attnExtras(new AttnArgs(T, c.numHeads, c.numKvHeads, hd, fixes.window(spec), scale,
                    divideMode, CudaRuntime.round16((float) Math.sqrt(hd), fp16), (float) fixes.attnSoftcap(c), bf),
                    dm.sinks(spec.index()), spec, fixes, pos0);
            if (tcAtt) {
                k.toBf16(ws.qB, ws.q, (long) T * qd);
                k.toBf16(ws.kB, ws.k, (long) T * kvd);
                k.toBf16(ws.vB, ws.v, (long) T * kvd);
                k.attentionTc(att, ws.qB, ws.kB, ws.vB, args);
            } else {
                k.attention(ws.att, ws.q, ws.k, ws.v, args);
                if (att.bf16() != null) k.toBf16(att.bf16(), ws.att, (long) T * qd);
            }
        }

        /** x += [post-norm] down(act(gate(m)) · up(m)) of m = mlp_norm(x) (not gated: down(act(up(m)))). */
        private void mlpBlock(String p, DeviceModel.Layer w, CudaMoe.Weights experts) {
            normOrCopy(a, ws.x, w.mlpNorm());
            subProbe(p + "mlp_norm", a, H);
            if (experts != null) {   // MoE layer: forward/cuda/CudaMoe
                CudaMoe.block(new CudaMoe.Step(k, mk, ws.moe, c, T, bf, fixes, mlpArgs, pc, teacher, all),
                        p, experts, a, ws.o);
            } else if (f.mlp == Family.Mlp.GATED) {
                k.gemm(ws.g, a, fixes.swapGateUp ? w.up() : w.gate(), T, bf);
                k.gemm(ws.u, a, fixes.swapGateUp ? w.gate() : w.up(), T, bf);
                k.mlpAct(act, ws.g, ws.u, (long) T * ff, mlpArgs);
            } else {
                k.gemm(ws.g, a, w.up(), T, bf);
                k.mlpAct(act, ws.g, null, (long) T * ff, mlpArgs);
            }
            if (experts != null) {
                subProbe(p + "mlp_out", Act.of(ws.o), H);
            } else {
                subProbe(p + "mlp_act", act, ff);
                boolean fuse = fuseResidual && w.postMlpNorm() == null && !fixes.parallelResidual(c) && !teacher.forced();
                if (fuse) {
                    k.gemmAdd(ws.o, act, w.down(), T, bf, ws.x);   // x += down(...) in the GEMM's epilogue
                    subProbe(p + "mlp_out", Act.of(ws.o), H);
                    return;
                }
                k.gemm(ws.o, act, w.down(), T, bf);
                subProbe(p + "mlp_out", Act.of(ws.o), H);
            }
            if (w.postMlpNorm() != null) k.norm(Act.of(ws.o), ws.o, w.postMlpNorm(), T, normArgs);
            if (fixes.parallelResidual(c)) k.residualAdd(ws.o, ws.ao, (long) T * H, bf);   // HF: (mlp + attn) + x, each add rounded
            k.residualAdd(ws.x, ws.o, (long) T * H, bf);
        }

        /** final_norm, then the LM head in row chunks (each chunk's logits copied while the next is computed). */
        void head(boolean noCopies) {
            k.norm(a, ws.x, dm.finalNorm, T, normArgs);
            probe("final_norm", a, H);
            double cap = fixes.finalSoftcap(c);
            Linear lmHead = new Linear(dm.lmHead, null, V, H, dm.bf16);
            Object lh = pc.begin("logits", T, V);
            int chunk = noCopies ? T : Math.max(1, (T + LOGIT_CHUNKS - 1) / LOGIT_CHUNKS);
            for (int r0 = 0; r0 < T; r0 += chunk) {
                int n = Math.min(chunk, T - r0);
                CUdeviceptr lr = ws.logits.withByteOffset(4L * r0 * V);
                k.gemm(lr, a.rows(r0, H), lmHead, n, bf);
                if (!Double.isNaN(cap)) k.softcap(lr, (long) n * V, (float) cap, bf);
                pc.rows(lh, ws.logits, r0, n);
            }
            pc.end(lh, ws.logits);
        }
    }

    static double[] widen(FloatBuffer f) {
        double[] d = new double[f.remaining()];
        for (int i = 0; i < d.length; i++) d[i] = f.get(i);
        return d;
    }
}
