package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.forward.cuda.DeviceKernels.Norm;
import modeldiff.model.BadInputException;
import modeldiff.model.LayerWeights;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * A model's weights on the GPU, one subclass per weight source: {@link ResidentModel} (a release, every weight on the
 * device), {@link StreamedModel} (a release whose layers live in page-locked host memory and are streamed through two
 * device slots) and {@link SyntheticModel} (seeded weights generated on the device, for benchmarks). Linear weights
 * and the embedding are bf16 (bf16 mode) or fp32 [out, in]; norm weights, biases and learned positions are fp32
 * buffers (holding bf16-rounded values in bf16 mode, as from_pretrained(dtype=bfloat16) casts every parameter).
 * <p>
 * The forward asks for layer i's weights with {@link #acquire} and hands them back with {@link #release}; only the
 * streamed model does anything there.
 */
public abstract class DeviceModel implements AutoCloseable {
    /** One decoder layer's weights on the device (null: the family has no such weight). */
    public record Layer(Norm attnNorm, Linear q, Linear k, Linear v, Linear o, Norm qNorm, Norm kNorm, Norm postAttnNorm,
                        Norm mlpNorm, Linear gate, Linear up, Linear down, Norm postMlpNorm) {
    }

    public static final String MAX_WEIGHT_BYTES = "modeldiff.cuda.maxWeightBytes";

    /** 16-bit weights (cuda:bf16 or cuda:fp16); {@link #fp16} says which type. */
    public final boolean bf16;
    /** The 16-bit type is IEEE half (cuda:fp16), not bfloat16. */
    public final boolean fp16;
    public final ModelConfig config;
    public final Object key;
    CUdeviceptr embedding, positions, lmHead;
    Norm finalNorm;
    final List<Layer> layers = new ArrayList<>();
    /** Per layer, resident in both weight placements (CudaAttentionVariants): gpt-oss's sink logits, MLA's weights. */
    final List<CUdeviceptr> sinks = new ArrayList<>();
    final List<CudaAttentionVariants.MlaLayer> mla = new ArrayList<>();
    /** Per layer its experts ({@link CudaMoe}), null for a dense layer; empty for a dense model. */
    final List<CudaMoe.Weights> moe = new ArrayList<>();
    private final List<CUdeviceptr> owned = new ArrayList<>();
    /** Per owned buffer, the runtime whose context allocated it (null: the one runtime of an unsplit model). */
    private final List<CudaRuntime> ownerOf = new ArrayList<>();
    long bytes;
    /** The device slots the layers are spread over (null: one device, today's single-GPU model). */
    Placement placement;
    /** Workspace of the last forward (CudaPass), kept between runs. */
    AutoCloseable workspace;

    /**
     * A model spread over device slots (issue #18): the runtime of each slot and the plan (slot 0 holds the
     * embedding, the plan's last slot the final norm and LM head, each slot a contiguous range of layers).
     */
    public record Placement(List<CudaRuntime> runtimes, LayerPlacement.Split plan) {
        /** The runtime of layer i's slot. */
        CudaRuntime of(int layer) {
            return runtimes.get(plan.deviceOf(layer));
        }

        CudaRuntime first() {
            return runtimes.get(plan.ranges().get(0).device());
        }

        CudaRuntime head() {
            return runtimes.get(plan.headDevice());
        }

        /** The slots the plan uses, in order. */
        List<CudaRuntime> used() {
            List<CudaRuntime> l = new ArrayList<>();
            for (LayerPlacement.Range r : plan.ranges()) l.add(runtimes.get(r.device()));
            return l;
        }

        /** e.g. "0:[embed, layers 0-1] 0:[layers 2-3, head]" with the slots' device ordinals. */
        public String describe() {
            StringBuilder sb = new StringBuilder();
            String d = plan.describe();
            for (String part : d.split(" (?=\\d+:\\[)")) {
                int slot = Integer.parseInt(part.substring(0, part.indexOf(':')));
                CudaRuntime rt = runtimes.get(slot);
                sb.append(sb.length() == 0 ? "" : " ").append("cuda").append(rt.ordinal).append(rt.created ? "'" : "")
                        .append(part.substring(part.indexOf(':')));
            }
            return sb.toString();
        }
    }

    DeviceModel(ModelConfig config, boolean bf16, Object key) {
        this(config, bf16 ? Precision.BF16 : Precision.FP32, key);
    }

    DeviceModel(ModelConfig config, Precision p, Object key) {
        if (p != Precision.FP32 && p != Precision.BF16 && p != Precision.FP16)
            throw new IllegalArgumentException("cuda weights are fp32, bf16 or fp16, not " + p.id());
        this.config = config;
        this.bf16 = p != Precision.FP32;
        this.fp16 = p == Precision.FP16;
        this.key = key;
    }

    /** The weights' (and the pass's) dtype. */
    public Precision precision() {
        return !bf16 ? Precision.FP32 : fp16 ? Precision.FP16 : Precision.BF16;
    }

    /** Whether the layers are spread over several device slots ({@link #placement}). */
    public boolean split() {
        return placement != null;
    }

    /** Whether the layers are streamed from host memory ({@link StreamedModel}). */
    public boolean streamed() {
        return false;
    }

    /** Bytes of weights (resident and streamed). */
    public long bytes() {
        return bytes;
    }

    /** Before a forward (the streamed model queues its first layers). */
    public void startForward() {
    }

    /** Compute stream: layer i's weights must be usable by the kernels queued next. */
    public void acquire(int i) {
    }

    /** Compute stream: the kernels queued so far are the last to use layer i's weights. */
    public void release(int i) {
    }

    /** The device budget for weights: the property, else free memory less max(2 GiB, 10% of the device). */
    public static long maxWeightBytes() {
        String p = System.getProperty(MAX_WEIGHT_BYTES);
        if (p != null && !p.isBlank()) return parseBytes(p);
        long[] info = CudaRuntime.memInfo();
        return info[0] - Math.max(2L << 30, info[1] / 10);
    }

    static long parseBytes(String s) {
        s = s.trim().toLowerCase(java.util.Locale.ROOT);
        long mul = 1;
        char last = s.charAt(s.length() - 1);
        if (last == 'k' || last == 'm' || last == 'g' || last == 't') {
            mul = switch (last) { case 'k' -> 1L << 10; case 'm' -> 1L << 20; case 'g' -> 1L << 30; default -> 1L << 40; };
            s = s.substring(0, s.length() - 1);
        }
        return (long) (Double.parseDouble(s) * mul);
    }

    /** Uploads a release: resident when its weights fit {@link #maxWeightBytes()}, else streamed layer by layer. */
    public static DeviceModel upload(Model model, boolean bf16) {
        return upload(model, bf16, maxWeightBytes(), false);
    }

    /** forceStreamed: stream the layers even when everything fits (tests). */
    public static DeviceModel upload(Model model, boolean bf16, long maxWeightBytes, boolean forceStreamed) {
        return upload(model, bf16 ? Precision.BF16 : Precision.FP32, maxWeightBytes, forceStreamed);
    }

    /** As above, in dtype p (fp32, bf16 or fp16). */
    public static DeviceModel upload(Model model, Precision p, long maxWeightBytes, boolean forceStreamed) {
        ModelConfig c = model.config;
        int es = p == Precision.FP32 ? 4 : 2;
        long linear = 0, maxLayer = 0;
        for (int i = 0; i < c.numLayers; i++) {
            long e = layerLinElems(model.layer(i)) * es;
            linear += e;
            maxLayer = Math.max(maxLayer, e);
        }
        long other = (long) c.vocabSize * c.hiddenSize * es * (model.lmHead() == model.embedding() ? 1 : 2)
                + CudaMoe.deviceBytes(model, es);   // experts stay resident
        if (!forceStreamed && linear + other <= maxWeightBytes) return ResidentModel.upload(model, p);
        if (!forceStreamed && other + 2 * maxLayer > maxWeightBytes)
            throw new BadInputException(String.format("cuda: the model needs %.2f GB on the device even streamed layer by layer "
                    + "(embedding, LM head, two layer slots), over the budget of %.2f GB (-D%s)",
                    (other + 2 * maxLayer) / 1e9, maxWeightBytes / 1e9, MAX_WEIGHT_BYTES));
        return StreamedModel.upload(model, p, maxLayer);
    }

    /**
     * Uploads a release for the device list {@code ordinals} ({@code -Dmodeldiff.cuda.devices}): the {@link
     * LayerPlacement} plan over the slots' budgets ({@code -Dmodeldiff.cuda.maxWeightBytes} per slot when set, else
     * each device's free memory less max(2 GiB, 10%), shared among its slots). One slot when everything fits the
     * first: on device 0 that is exactly {@link #upload(Model, Precision, long, boolean)}. When no split fits, the
     * layers are streamed on the first slot's device (device 0 only: streaming elsewhere is not built), else refused
     * naming both reasons. forceStreamed streams on device 0 as before.
     */
    public static DeviceModel upload(Model model, Precision p, int[] ordinals, boolean forceStreamed) {
        if (ordinals == null || ordinals.length == 1 && ordinals[0] == 0 || forceStreamed)
            return upload(model, p, maxWeightBytes(), forceStreamed);
        List<CudaRuntime> rts = CudaRuntime.devices(ordinals);
        long[] budgets = budgets(rts, ordinals);
        LayerPlacement.Result plan = LayerPlacement.plan(request(model, p, budgets));
        if (plan instanceof LayerPlacement.Split s) {
            if (s.devices() == 1 && rts.get(0).ordinal == 0 && !rts.get(0).created)
                return upload(model, p, budgets[0], false);   // fits the first device: today's model
            return ResidentModel.upload(model, p, new Placement(rts, s));
        }
        String why = ((LayerPlacement.Refused) plan).reason();
        if (rts.get(0).ordinal != 0 || rts.get(0).created)
            throw new BadInputException("cuda devices " + java.util.Arrays.toString(ordinals) + ": " + why
                    + "; streaming the layers runs on device 0 only (list it first)");
        try {
            return upload(model, p, maxWeightBytes(), false);   // streamed when it does not fit device 0
        } catch (BadInputException e) {
            throw new BadInputException("cuda devices " + java.util.Arrays.toString(ordinals) + ": " + why + "; " + e.getMessage());
        }
    }

    /** Each slot's weight budget (see {@link #upload(Model, Precision, int[], boolean)}). */
    static long[] budgets(List<CudaRuntime> rts, int[] ordinals) {
        String prop = System.getProperty(MAX_WEIGHT_BYTES);
        long[] per = new long[rts.size()];
        try {
            for (int i = 0; i < per.length; i++) {
                if (prop != null && !prop.isBlank()) {
                    per[i] = parseBytes(prop);
                    continue;
                }
                CudaRuntime.use(rts.get(i));
                long[] info = CudaRuntime.memInfo();
                per[i] = info[0] - Math.max(2L << 30, info[1] / 10);
            }
        } finally {
            CudaRuntime.use(null);
        }
        return prop != null && !prop.isBlank() ? per : LayerPlacement.shareBudgets(ordinals, per);
    }

    /** The planner's sizes for a release in dtype p ({@link #layerBytes}; the LM head a copy when split, if tied). */
    static LayerPlacement.Request request(Model model, Precision p, long[] budgets) {
        int es = p == Precision.FP32 ? 4 : 2;
        ModelConfig c = model.config;
        long matrix = (long) c.vocabSize * c.hiddenSize * es;
        long[] layers = new long[c.numLayers];
        for (int i = 0; i < layers.length; i++) layers[i] = layerBytes(model, i, es);
        return new LayerPlacement.Request(layers, matrix, matrix, model.lmHead() == model.embedding(), budgets);
    }

    /**
     * Device bytes of layer i: its linear weights (dtype), MLA projections, experts, routers and shared expert, and
     * fp32 norms (four of hidden width at most, as an upper bound).
     */
    static long layerBytes(Model model, int i, int es) {
        ModelConfig c = model.config;
        long b = layerLinElems(model.layer(i)) * es + 4L * 4 * c.hiddenSize + CudaMoe.layerBytes(model, i, es);
        modeldiff.model.MlaWeights m = model.mla(i);
        if (m != null)
            b += es * (linElems(m.qA()) + linElems(m.qNope()) + linElems(m.qRope()) + linElems(m.kvA()) + linElems(m.kPe())
                    + linElems(m.kNope()) + linElems(m.v()));
        return b;
    }

    /**
     * A split model's weights (resident): the embedding (and learned positions) on the first slot, final norm and LM
     * head on the head slot (a tied head uploaded again there when that is another slot), each layer's weights, sink
     * logits, MLA projections and experts on its slot. Allocations happen with the slot's context current.
     */
    void uploadSplit(Model model, Function<LinearRef, Linear> linear) {
        ModelConfig c = model.config;
        long VH = (long) c.vocabSize * c.hiddenSize;
        try {
            CudaRuntime.use(placement.first());
            embedding = matrix(model.embedding(), 0, VH);
            if (model.positionEmbedding() != null)
                positions = vector(TensorStore.readDoubles(model.positionEmbedding(), 0, model.positionEmbedding().elementCount()));
            CudaRuntime.use(placement.head());
            boolean sameSlot = placement.head() == placement.first();
            lmHead = sameSlot && model.lmHead() == model.embedding() ? embedding : matrix(model.lmHead(), 0, VH);
            finalNorm = norm(model.finalNorm());
            for (int i = 0; i < c.numLayers; i++) {
                CudaRuntime.use(placement.of(i));
                TensorInfo s = model.sinks(i);
                sinks.add(s == null ? null : vector(TensorStore.readDoubles(s, 0, c.numHeads)));
                mla.add(model.mla(i) == null ? null : CudaAttentionVariants.MlaLayer.upload(this, model.mla(i)));
                layers.add(layer(model.layer(i), linear));
                modeldiff.model.MoeWeights w = model.moe(i);
                moe.add(w == null ? null : CudaMoe.upload(this, w, c));
            }
            for (CudaRuntime rt : placement.used()) rt.synchronize();
        } finally {
            CudaRuntime.use(null);
        }
    }

    // ---------------------------------------------------------------- shared by the subclasses

    int es() {
        return bf16 ? 2 : 4;
    }

    static long linElems(LinearRef r) {
        return r == null ? 0 : (long) r.out() * r.in();
    }

    static long layerLinElems(LayerWeights w) {
        return linElems(w.q()) + linElems(w.k()) + linElems(w.v()) + linElems(w.o()) + linElems(w.gate()) + linElems(w.up())
                + linElems(w.down());
    }

    /** Runs {@code fill} on this model, closing what it allocated if it fails. */
    static <M extends DeviceModel> M building(M dm, java.util.function.Consumer<M> fill) {
        try {
            fill.accept(dm);
            return dm;
        } catch (RuntimeException | Error e) {
            dm.close();
            throw e;
        }
    }

    /** A release's embedding, LM head, learned positions and final norm, resident. */
    void uploadOuterWeights(Model model) {
        ModelConfig c = model.config;
        int H = c.hiddenSize;
        embedding = matrix(model.embedding(), 0, (long) c.vocabSize * H);
        lmHead = model.lmHead() == model.embedding() ? embedding : matrix(model.lmHead(), 0, (long) c.vocabSize * H);
        if (model.positionEmbedding() != null)
            positions = vector(TensorStore.readDoubles(model.positionEmbedding(), 0, model.positionEmbedding().elementCount()));
        finalNorm = norm(model.finalNorm());
        for (int i = 0; i < c.numLayers; i++) {
            TensorInfo s = model.sinks(i);   // [heads], rounded to bf16 in bf16 mode as lowp rounds them
            sinks.add(s == null ? null : vector(TensorStore.readDoubles(s, 0, c.numHeads)));
            mla.add(model.mla(i) == null ? null : CudaAttentionVariants.MlaLayer.upload(this, model.mla(i)));
        }
    }

    /** Layer i's sink logits on the device (fp32 [heads]), or null. */
    CUdeviceptr sinks(int i) {
        return i < sinks.size() ? sinks.get(i) : null;
    }

    /** Layer i's MLA weights on the device, or null (not an MLA layer). */
    CudaAttentionVariants.MlaLayer mla(int i) {
        return i < mla.size() ? mla.get(i) : null;
    }

    /** Layer i's experts, or null where it runs a dense MLP. */
    CudaMoe.Weights moe(int i) {
        return i < moe.size() ? moe.get(i) : null;
    }

    /** A release's MoE layers' routers, experts and shared experts, resident (also when the other weights stream). */
    void uploadMoe(Model model) {
        for (int i = 0; i < model.config.numLayers; i++) {
            modeldiff.model.MoeWeights w = model.moe(i);
            moe.add(w == null ? null : CudaMoe.upload(this, w, model.config));
        }
    }

    /** A release's layer: norms (and biases) resident, each linear weight placed by {@code linear}. */
    Layer layer(LayerWeights w, Function<LinearRef, Linear> linear) {
        Function<LinearRef, Linear> lin = r -> r == null ? null : linear.apply(r);
        return new Layer(norm(w.attnNorm()), lin.apply(w.q()), lin.apply(w.k()), lin.apply(w.v()), lin.apply(w.o()),
                norm(w.qNorm()), norm(w.kNorm()), norm(w.postAttnNorm()), norm(w.mlpNorm()), lin.apply(w.gate()),
                lin.apply(w.up()), lin.apply(w.down()), norm(w.postMlpNorm()));
    }

    CUdeviceptr own(CUdeviceptr p) {
        owned.add(p);
        ownerOf.add(placement == null ? null : CudaRuntime.get());   // a split model's slot is the thread's runtime now
        return p;
    }

    private float toF(double d) {
        return bf16 ? CudaRuntime.round16((float) d, fp16) : (float) d;
    }

    /** An fp32 buffer (bf16-rounded values in bf16 mode); null for null. */
    CUdeviceptr vector(double[] d) {
        if (d == null) return null;
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = toF(d[i]);
        bytes += 4L * f.length;
        return own(CudaRuntime.upload(f));
    }

    /** An fp32 buffer of the values as stored (a parameter HF keeps in float32), never rounded to bf16. */
    CUdeviceptr vectorFp32(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        bytes += 4L * f.length;
        return own(CudaRuntime.upload(f));
    }

    Norm norm(NormRef r) {
        if (r == null) return null;
        return new Norm(vector(r.loadWeight()), vector(r.loadBias()), (int) r.weight().elementCount());
    }

    /** A linear weight resident on the device. */
    Linear residentLinear(LinearRef r) {
        // Conv1D (transposed) and strided row blocks (GPT-NeoX fused qkv) are gathered on the host first
        CUdeviceptr w = r.conv1d() || r.strided() ? matrix(r.loadWeight())
                : matrix(r.weight(), (long) r.outStart() * r.in(), (long) r.out() * r.in());
        return new Linear(w, vector(r.loadBias()), r.out(), r.in(), bf16);
    }

    private CUdeviceptr matrix(double[] d) {
        CUdeviceptr p = own(CudaRuntime.alloc((long) d.length * es()));
        copyChunk(p, 0, d);
        bytes += (long) d.length * es();
        return p;
    }

    /** A stored tensor's elements [first, first + count), read and uploaded in chunks (an LM head can be GBs). */
    private CUdeviceptr matrix(TensorInfo t, long first, long count) {
        int es = es();
        CUdeviceptr p = own(CudaRuntime.alloc(count * es));
        bytes += count * es;
        final long chunk = 1 << 22;
        for (long off = 0; off < count; off += chunk) {
            long n = Math.min(chunk, count - off);
            copyChunk(p, off, TensorStore.readDoubles(t, first + off, n));
        }
        return p;
    }

    void copyChunk(CUdeviceptr p, long elementOffset, double[] d) {
        if (d.length == 0) return;
        if (bf16) {
            short[] s = new short[d.length];
            for (int i = 0; i < d.length; i++) s[i] = CudaRuntime.bits16((float) d[i], fp16);
            cuMemcpyHtoD(p.withByteOffset(elementOffset * Sizeof.SHORT), Pointer.to(s), (long) s.length * Sizeof.SHORT);
        } else {
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
            cuMemcpyHtoD(p.withByteOffset(elementOffset * Sizeof.FLOAT), Pointer.to(f), (long) f.length * Sizeof.FLOAT);
        }
    }

    /** n seeded uniform values in ±amp, generated on the device (bf16 or fp32 as the weights). */
    void fill(CUdeviceptr p, long n, long seed, float amp, DeviceKernels k) {
        if (bf16) {
            boolean saved = k.fp16;
            k.fp16 = fp16;
            k.fillBf16(p, n, seed, amp, 0f);
            k.fp16 = saved;
        } else {
            k.fillF32(p, n, seed, amp, 0f);
        }
    }

    /** n seeded uniform values, resident. */
    CUdeviceptr random(long n, long seed, float amp, DeviceKernels k) {
        CUdeviceptr p = own(CudaRuntime.alloc(n * es()));
        bytes += n * es();
        fill(p, n, seed, amp, k);
        return p;
    }

    /** A norm whose weights are all {@code value}, no bias. */
    Norm constNorm(int dim, float value, DeviceKernels k) {
        CUdeviceptr p = own(CudaRuntime.alloc((long) dim * 4));
        k.fillF32(p, dim, 0, 0f, value);
        return new Norm(p, null, dim);
    }

    /** Frees what a subclass holds beyond the device allocations (after they are synchronised). */
    void freeMore() {
    }

    boolean holdsMore() {
        return false;
    }

    @Override
    public void close() {
        if (workspace != null) {
            try {
                workspace.close();
            } catch (Exception ignored) {
                // freeing device memory
            }
            workspace = null;
        }
        if (placement != null) {
            closeSplit();
            return;
        }
        if (!owned.isEmpty() || holdsMore()) CudaRuntime.sync();
        for (CUdeviceptr p : owned) CudaRuntime.free(p);
        owned.clear();
        ownerOf.clear();
        freeMore();
    }

    /** Every slot synchronised, then each buffer freed with its own context current. */
    private void closeSplit() {
        try {
            for (CudaRuntime rt : placement.runtimes()) rt.synchronize();
            for (int i = 0; i < owned.size(); i++) {
                CudaRuntime rt = ownerOf.get(i);
                if (rt != null) rt.makeCurrent();
                CudaRuntime.free(owned.get(i));
            }
            owned.clear();
            ownerOf.clear();
            freeMore();
        } finally {
            CudaRuntime.use(null);
        }
    }
}
