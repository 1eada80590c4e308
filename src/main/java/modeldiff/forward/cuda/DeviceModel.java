package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerWeights;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

/**
 * A model's weights on the GPU. Linear weights and the embedding are bf16 (bf16 mode) or fp32 [out, in]; norm weights,
 * biases and learned positions are fp32 buffers (holding bf16-rounded values in bf16 mode, as
 * from_pretrained(dtype=bfloat16) casts every parameter).
 *
 * <p><b>Resident</b> (the default): every weight is uploaded once. <b>Streamed</b>, when the weights exceed the
 * device budget ({@code -Dmodeldiff.cuda.maxWeightBytes}, default: free device memory less a reserve): embedding,
 * LM head, norms and biases stay on the device; each layer's linear weights live in page-locked host memory
 * (cuMemAllocHost, pieces of at most 1 GiB) and are copied into one of two device slots (layer i → slot i % 2) on a separate stream while the
 * previous layer computes: {@link #acquire} makes the compute stream wait for layer i's upload, {@link #release}
 * queues layer i + 2 into the slot layer i used, once the compute stream is done with it.
 */
public final class DeviceModel implements AutoCloseable {
    public record Lin(CUdeviceptr w, CUdeviceptr b, int out, int in) {
    }

    public record Nrm(CUdeviceptr w, CUdeviceptr b, int dim) {
    }

    public record Layer(Nrm attnNorm, Lin q, Lin k, Lin v, Lin o, Nrm qNorm, Nrm kNorm, Nrm postAttnNorm, Nrm mlpNorm,
                        Lin gate, Lin up, Lin down, Nrm postMlpNorm) {
    }

    public static final String MAX_WEIGHT_BYTES = "modeldiff.cuda.maxWeightBytes";

    public final boolean bf16;
    public final ModelConfig config;
    public final Object key;
    CUdeviceptr embedding, positions, lmHead;
    Nrm finalNorm;
    final List<Layer> layers = new ArrayList<>();
    private final List<CUdeviceptr> owned = new ArrayList<>();
    long bytes;
    /** Workspace of the last forward (CudaPass), kept between runs. */
    AutoCloseable workspace;

    // ---- streamed mode
    private boolean streamed;
    private long slotBytes;
    private final CUdeviceptr[] slots = new CUdeviceptr[2];
    private final List<List<Piece>> layerPieces = new ArrayList<>();
    private final List<Pointer> hostBlocks = new ArrayList<>();
    private final CUevent[] slotFree = new CUevent[2], uploaded = new CUevent[2];
    private final int[] slotLayer = {-1, -1};
    private CudaRuntime rt;

    private DeviceModel(ModelConfig config, boolean bf16, Object key) {
        this.config = config;
        this.bf16 = bf16;
        this.key = key;
    }

    public boolean streamed() {
        return streamed;
    }

    /** Bytes of weights (resident and streamed). */
    public long bytes() {
        return bytes;
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

    private int es() {
        return bf16 ? 2 : 4;
    }

    private static long linElems(LinearRef r) {
        return r == null ? 0 : (long) r.out() * r.in();
    }

    private static long layerLinElems(LayerWeights w) {
        return linElems(w.q()) + linElems(w.k()) + linElems(w.v()) + linElems(w.o()) + linElems(w.gate()) + linElems(w.up())
                + linElems(w.down());
    }

    /** Uploads the model: resident when its weights fit {@link #maxWeightBytes()}, else streamed layer by layer. */
    public static DeviceModel upload(Model model, boolean bf16) {
        return upload(model, bf16, maxWeightBytes(), false);
    }

    /** forceStreamed: stream the layers even when everything fits (tests). */
    public static DeviceModel upload(Model model, boolean bf16, long maxWeightBytes, boolean forceStreamed) {
        ModelConfig c = model.config;
        DeviceModel dm = new DeviceModel(c, bf16, model);
        int es = dm.es();
        long linear = 0, maxLayer = 0;
        for (int i = 0; i < c.numLayers; i++) {
            long e = layerLinElems(model.layer(i)) * es;
            linear += e;
            maxLayer = Math.max(maxLayer, e);
        }
        long other = (long) c.vocabSize * c.hiddenSize * es * (model.lmHead() == model.embedding() ? 1 : 2);
        boolean stream = forceStreamed || linear + other > maxWeightBytes;
        if (stream && !forceStreamed && other + 2 * maxLayer > maxWeightBytes)
            throw new BadInputException(String.format("cuda: the model needs %.2f GB on the device even streamed layer by layer "
                    + "(embedding, LM head, two layer slots), over the budget of %.2f GB (-D%s)",
                    (other + 2 * maxLayer) / 1e9, maxWeightBytes / 1e9, MAX_WEIGHT_BYTES));
        try {
            int H = c.hiddenSize;
            dm.embedding = dm.matrix(model.embedding(), 0, (long) c.vocabSize * H);
            dm.lmHead = model.lmHead() == model.embedding() ? dm.embedding : dm.matrix(model.lmHead(), 0, (long) c.vocabSize * H);
            if (model.positionEmbedding() != null)
                dm.positions = dm.vector(TensorStore.readDoubles(model.positionEmbedding(), 0, model.positionEmbedding().elementCount()));
            dm.finalNorm = dm.norm(model.finalNorm());
            if (stream) dm.initSlots(maxLayer);
            for (int i = 0; i < c.numLayers; i++) {
                LayerWeights w = model.layer(i);
                Placer p = stream ? dm.new HostPlacer(i, layerLinElems(w) * es) : null;
                dm.layers.add(new Layer(dm.norm(w.attnNorm()), dm.linear(w.q(), p), dm.linear(w.k(), p), dm.linear(w.v(), p),
                        dm.linear(w.o(), p), dm.norm(w.qNorm()), dm.norm(w.kNorm()), dm.norm(w.postAttnNorm()),
                        dm.norm(w.mlpNorm()), dm.linear(w.gate(), p), dm.linear(w.up(), p), dm.linear(w.down(), p),
                        dm.norm(w.postMlpNorm())));
            }
        } catch (RuntimeException | Error e) {
            dm.close();
            throw e;
        }
        return dm;
    }

    /**
     * Seeded uniform weights of the config's shapes, generated on the GPU (benchmarks: nothing to read from disk).
     * Linear weights ~U(±1/√in), norm weights 1 (0 for unit-offset norms), no biases. streamed: layers go to
     * page-locked host memory (generated on the device, copied down) and are streamed as in {@link #upload}; the
     * values are the same as resident.
     */
    public static DeviceModel synthetic(ModelConfig c, boolean bf16, long seed, Kernels k, boolean streamed) {
        DeviceModel dm = new DeviceModel(c, bf16, new Object());
        int H = c.hiddenSize, ff = c.intermediateSize;
        long[] s = {seed};
        dm.embedding = dm.random((long) c.vocabSize * H, s[0]++, 0.05f, k);
        dm.lmHead = c.tieWordEmbeddings ? dm.embedding : dm.random((long) c.vocabSize * H, s[0]++, (float) (1 / Math.sqrt(H)), k);
        float one = c.family.norm.unitOffset() ? 0f : 1f;
        dm.finalNorm = dm.constNorm(H, one, k);
        boolean gated = c.family.mlp == Family.Mlp.GATED;
        long layerElems = 2L * c.qDim() * H + 2L * c.kvDim() * H + (gated ? 3L : 2L) * ff * H;
        if (streamed) dm.initSlots(layerElems * dm.es());
        for (int i = 0; i < c.numLayers; i++) {
            Placer p = streamed ? dm.new HostPlacer(i, layerElems * dm.es()) : null;
            dm.layers.add(new Layer(dm.constNorm(H, one, k),
                    dm.randomLin(c.qDim(), H, s[0]++, k, p), dm.randomLin(c.kvDim(), H, s[0]++, k, p),
                    dm.randomLin(c.kvDim(), H, s[0]++, k, p), dm.randomLin(H, c.qDim(), s[0]++, k, p),
                    c.family.qkNorm ? dm.constNorm(c.headDim, one, k) : null, c.family.qkNorm ? dm.constNorm(c.headDim, one, k) : null,
                    c.family.sandwichNorms ? dm.constNorm(H, one, k) : null, dm.constNorm(H, one, k),
                    gated ? dm.randomLin(ff, H, s[0]++, k, p) : null, dm.randomLin(ff, H, s[0]++, k, p), dm.randomLin(H, ff, s[0]++, k, p),
                    c.family.sandwichNorms ? dm.constNorm(H, one, k) : null));
            if (p != null) p.finish();
        }
        CudaRuntime.sync();
        return dm;
    }

    public static DeviceModel synthetic(ModelConfig c, boolean bf16, long seed, Kernels k) {
        return synthetic(c, bf16, seed, k, false);
    }

    // ---------------------------------------------------------------- streamed layers

    /** Room for aligning each of a layer's (at most 7) linear weights to 256 bytes. */
    private static final long PAD = 7 * 256;

    private void initSlots(long maxLayerBytes) {
        streamed = true;
        rt = CudaRuntime.get();
        slotBytes = maxLayerBytes + PAD;
        for (int i = 0; i < 2; i++) {
            slots[i] = own(CudaRuntime.alloc(slotBytes));
            slotFree[i] = CudaRuntime.event();
            uploaded[i] = CudaRuntime.event();
        }
    }

    /** Where a layer's linear weights go: a device allocation (resident) or an offset in the layer's host block. */
    private interface Placer {
        /** The device pointer the kernels will use for `count` elements; `fill` writes them (host or device). */
        CUdeviceptr place(long count, java.util.function.BiConsumer<CUdeviceptr, Long> deviceFill, double[] hostValues,
                          TensorInfo t, long first);

        default void finish() {
        }
    }

    /** One piece of a streamed layer: page-locked host memory copied to slot + slotOffset. */
    private record Piece(Pointer host, long slotOffset, long bytes) {
    }

    /** Page-locked pieces are at most this large (JCuda returns each as one ByteBuffer: under 2 GiB). */
    private static final long PIECE = 1L << 30;

    /**
     * Streamed layer i: each weight in page-locked host pieces of at most {@link #PIECE} bytes, at 256-byte aligned
     * offsets of device slot i % 2.
     */
    private final class HostPlacer implements Placer {
        final int layer;
        final List<Piece> pieces = new ArrayList<>();
        long off;

        HostPlacer(int layer, long ignoredTotal) {
            this.layer = layer;
            layerPieces.add(pieces);
        }

        @Override
        public CUdeviceptr place(long count, java.util.function.BiConsumer<CUdeviceptr, Long> deviceFill, double[] hostValues,
                                 TensorInfo t, long first) {
            int es = es();
            long at = (off + 255) & ~255L;   // every weight 256-byte aligned, as cuMemAlloc's are (cp.async needs 16)
            off = at + count * es;
            if (off > slotBytes) throw new IllegalStateException("layer " + layer + " exceeds its slot");
            CUdeviceptr slot = slots[layer % 2];
            int firstPiece = pieces.size();
            for (long b = 0; b < count * es; b += PIECE) {
                long n = Math.min(PIECE, count * es - b);
                Pointer h = new Pointer();
                cuMemAllocHost(h, n);
                hostBlocks.add(h);
                pieces.add(new Piece(h, at + b, n));
            }
            if (deviceFill != null) {   // synthetic: generate in the slot, copy down
                deviceFill.accept(slot.withByteOffset(at), count);
                CudaRuntime.sync();
                for (int i = firstPiece; i < pieces.size(); i++) {
                    Piece p = pieces.get(i);
                    cuMemcpyDtoH(p.host(), slot.withByteOffset(p.slotOffset()), p.bytes());
                }
            } else if (hostValues != null) {
                put(firstPiece, 0, hostValues);
            } else {
                final long chunk = 1 << 22;
                for (long o = 0; o < count; o += chunk) {
                    long n = Math.min(chunk, count - o);
                    put(firstPiece, o * es, TensorStore.readDoubles(t, first + o, n));
                }
            }
            bytes += count * es;
            return slot.withByteOffset(at);
        }

        /** Writes d (as bf16 / fp32) at byte offset byteOff of the weight whose pieces start at firstPiece. */
        private void put(int firstPiece, long byteOff, double[] d) {
            int es = es();
            int i = 0;
            while (i < d.length) {
                long pos = byteOff + (long) i * es;
                Piece p = pieces.get(firstPiece + (int) (pos / PIECE));
                long inPiece = pos % PIECE;
                int n = (int) Math.min(d.length - i, (p.bytes() - inPiece) / es);
                ByteBuffer bb = p.host().getByteBuffer(inPiece, (long) n * es).order(ByteOrder.nativeOrder());
                if (bf16) for (int j = 0; j < n; j++) bb.putShort(CudaRuntime.bf16Bits((float) d[i + j]));
                else for (int j = 0; j < n; j++) bb.putFloat((float) d[i + j]);
                i += n;
            }
        }
    }

    /** Compute stream: wait until layer i's weights are in its slot (queues the upload if nothing did). */
    public void acquire(int i) {
        if (!streamed) return;
        int s = i % 2;
        if (slotLayer[s] != i) prefetch(i);
        cuStreamWaitEvent(null, uploaded[s], 0);
    }

    /** Compute stream is done with layer i once the work queued so far runs: queue layer i + 2 into its slot. */
    public void release(int i) {
        if (!streamed) return;
        int s = i % 2;
        cuEventRecord(slotFree[s], null);
        slotLayer[s] = -1;
        if (i + 2 < layers.size()) prefetch(i + 2);
    }

    /** Before a forward: queue layers 0 and 1 (each waits for its slot's last user on the compute stream). */
    public void startForward() {
        if (!streamed) return;
        for (int s = 0; s < 2; s++) {
            cuEventRecord(slotFree[s], null);
            slotLayer[s] = -1;
        }
        for (int i = 0; i < Math.min(2, layers.size()); i++) prefetch(i);
    }

    private void prefetch(int i) {
        int s = i % 2;
        var up = rt.uploadStream();
        cuStreamWaitEvent(up, slotFree[s], 0);
        for (Piece p : layerPieces.get(i)) cuMemcpyHtoDAsync(slots[s].withByteOffset(p.slotOffset()), p.host(), p.bytes(), up);
        cuEventRecord(uploaded[s], up);
        slotLayer[s] = i;
    }

    // ---------------------------------------------------------------- resident helpers

    private CUdeviceptr random(long n, long seed, float amp, Kernels k) {
        CUdeviceptr p = own(CudaRuntime.alloc(n * es()));
        bytes += n * es();
        if (bf16) k.fillBf16(p, n, seed, amp, 0f);
        else k.fillF32(p, n, seed, amp, 0f);
        return p;
    }

    private Lin randomLin(int out, int in, long seed, Kernels k, Placer p) {
        long n = (long) out * in;
        float amp = (float) (1 / Math.sqrt(in));
        if (p == null) return new Lin(random(n, seed, amp, k), null, out, in);
        CUdeviceptr w = p.place(n, (d, cnt) -> {
            if (bf16) k.fillBf16(d, cnt, seed, amp, 0f);
            else k.fillF32(d, cnt, seed, amp, 0f);
        }, null, null, 0);
        return new Lin(w, null, out, in);
    }

    private Nrm constNorm(int dim, float value, Kernels k) {
        CUdeviceptr p = own(CudaRuntime.alloc((long) dim * 4));
        k.fillF32(p, dim, 0, 0f, value);
        return new Nrm(p, null, dim);
    }

    private CUdeviceptr own(CUdeviceptr p) {
        owned.add(p);
        return p;
    }

    private float toF(double d) {
        return bf16 ? CudaRuntime.bf16Round((float) d) : (float) d;
    }

    /** An fp32 buffer (bf16-rounded values in bf16 mode). */
    private CUdeviceptr vector(double[] d) {
        if (d == null) return null;
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = toF(d[i]);
        bytes += 4L * f.length;
        return own(CudaRuntime.upload(f));
    }

    private Nrm norm(NormRef r) {
        if (r == null) return null;
        return new Nrm(vector(r.loadWeight()), vector(r.loadBias()), (int) r.weight().elementCount());
    }

    private Lin linear(LinearRef r, Placer p) {
        if (r == null) return null;
        CUdeviceptr w;
        if (p != null) {
            if (r.conv1d() || r.strided()) w = p.place(linElems(r), null, r.loadWeight(), null, 0);
            else w = p.place(linElems(r), null, null, r.weight(), (long) r.outStart() * r.in());
        } else if (r.conv1d() || r.strided()) w = matrix(r.loadWeight());
        else w = matrix(r.weight(), (long) r.outStart() * r.in(), (long) r.out() * r.in());
        return new Lin(w, vector(r.loadBias()), r.out(), r.in());
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

    private void copyChunk(CUdeviceptr p, long elementOffset, double[] d) {
        if (d.length == 0) return;
        if (bf16) {
            short[] s = new short[d.length];
            for (int i = 0; i < d.length; i++) s[i] = CudaRuntime.bf16Bits((float) d[i]);
            cuMemcpyHtoD(p.withByteOffset(elementOffset * Sizeof.SHORT), Pointer.to(s), (long) s.length * Sizeof.SHORT);
        } else {
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
            cuMemcpyHtoD(p.withByteOffset(elementOffset * Sizeof.FLOAT), Pointer.to(f), (long) f.length * Sizeof.FLOAT);
        }
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
        if (!owned.isEmpty() || !hostBlocks.isEmpty()) CudaRuntime.sync();
        for (CUdeviceptr p : owned) CudaRuntime.free(p);
        owned.clear();
        for (Pointer h : hostBlocks) cuMemFreeHost(h);
        hostBlocks.clear();
    }
}
