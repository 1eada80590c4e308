package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;
import modeldiff.model.TensorStore;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

/**
 * Weights larger than the device budget: embedding, LM head, norms and biases stay on the device; each layer's linear
 * weights live in page-locked host memory (cuMemAllocHost, pieces of at most 1 GiB) and are copied into one of two
 * device slots (layer i → slot i % 2) on a separate stream while the previous layer computes: {@link #acquire} makes
 * the compute stream wait for layer i's upload, {@link #release} queues layer i + 2 into the slot layer i used, once
 * the compute stream is done with it.
 */
public final class StreamedModel extends DeviceModel {
    /** Room for aligning each of a layer's (at most 7) linear weights to 256 bytes. */
    private static final long PAD = 7 * 256;
    /** Page-locked pieces are at most this large (JCuda returns each as one ByteBuffer: under 2 GiB). */
    private static final long PIECE = 1L << 30;

    /** One piece of a streamed layer: page-locked host memory copied to slot + slotOffset. */
    private record Piece(Pointer host, long slotOffset, long bytes) {
    }

    private final CudaRuntime rt = CudaRuntime.get();
    private final long slotBytes;
    private final CUdeviceptr[] slots = new CUdeviceptr[2];
    private final CUevent[] slotFree = new CUevent[2], uploaded = new CUevent[2];
    private final int[] slotLayer = {-1, -1};
    private final List<List<Piece>> layerPieces = new ArrayList<>();
    private final List<Pointer> hostBlocks = new ArrayList<>();
    /** Where the next weight of each layer goes in its slot (bytes). */
    private final List<long[]> layerFill = new ArrayList<>();

    private StreamedModel(ModelConfig c, Precision p, Object key, long maxLayerBytes) {
        super(c, p, key);
        slotBytes = maxLayerBytes + PAD;
        for (int i = 0; i < 2; i++) {
            slots[i] = own(CudaRuntime.alloc(slotBytes));
            slotFree[i] = CudaRuntime.event();
            uploaded[i] = CudaRuntime.event();
        }
        for (int i = 0; i < c.numLayers; i++) {
            layerPieces.add(new ArrayList<>());
            layerFill.add(new long[1]);
        }
    }

    /** A release streamed layer by layer; maxLayerBytes: its largest layer's linear weights (bf16 or fp32). */
    static StreamedModel upload(Model model, Precision p, long maxLayerBytes) {
        return building(new StreamedModel(model.config, p, model, maxLayerBytes), dm -> {
            dm.uploadOuterWeights(model);
            for (int i = 0; i < model.config.numLayers; i++) {
                int layer = i;
                dm.layers.add(dm.layer(model.layer(i), r -> dm.hostLinear(layer, r)));
            }
            dm.uploadMoe(model);   // the experts stay resident (not streamed yet)
        });
    }

    /** {@link SyntheticModel}'s weights (same seeds, same values), streamed. */
    public static StreamedModel synthetic(ModelConfig c, boolean bf16, long seed, DeviceKernels k) {
        return synthetic(c, bf16 ? Precision.BF16 : Precision.FP32, seed, k);
    }

    /** In dtype p (fp32, bf16 or fp16). */
    public static StreamedModel synthetic(ModelConfig c, Precision p, long seed, DeviceKernels k) {
        long layerBytes = SyntheticModel.layerElems(c) * (p == Precision.FP32 ? 4 : 2);
        return building(new StreamedModel(c, p, new Object(), layerBytes), dm -> {
            SyntheticModel.build(dm, seed, k, (layer, out, in, s) -> dm.generatedLinear(layer, out, in, s, k));
            CudaRuntime.sync();
        });
    }

    @Override
    public boolean streamed() {
        return true;
    }

    // ---------------------------------------------------------------- placing the weights

    /**
     * Reserves {@code count} elements of layer {@code layer}: page-locked pieces for them (added to the layer's list
     * from index {@link List#size()} on) and their 256-byte aligned place in the layer's slot (cuMemAlloc aligns to
     * 256; cp.async needs 16). Returns the device pointer the kernels will use.
     */
    private CUdeviceptr reserve(int layer, long count) {
        long bytesNeeded = count * es();
        long[] fill = layerFill.get(layer);
        long at = (fill[0] + 255) & ~255L;
        fill[0] = at + bytesNeeded;
        if (fill[0] > slotBytes) throw new IllegalStateException("layer " + layer + " exceeds its slot");
        List<Piece> pieces = layerPieces.get(layer);
        for (long b = 0; b < bytesNeeded; b += PIECE) {
            long n = Math.min(PIECE, bytesNeeded - b);
            Pointer h = new Pointer();
            cuMemAllocHost(h, n);
            hostBlocks.add(h);
            pieces.add(new Piece(h, at + b, n));
        }
        bytes += bytesNeeded;
        return slots[layer % 2].withByteOffset(at);
    }

    /** A release's linear weight of layer {@code layer}, read from disk into page-locked pieces (bias resident). */
    private Linear hostLinear(int layer, LinearRef r) {
        long count = linElems(r);
        int firstPiece = layerPieces.get(layer).size();
        CUdeviceptr w = reserve(layer, count);
        if (r.conv1d() || r.strided()) {
            put(layer, firstPiece, 0, r.loadWeight());
        } else {
            final long chunk = 1 << 22;
            long first = (long) r.outStart() * r.in();
            for (long o = 0; o < count; o += chunk)
                put(layer, firstPiece, o * es(), TensorStore.readDoubles(r.weight(), first + o, Math.min(chunk, count - o)));
        }
        return new Linear(w, vector(r.loadBias()), r.out(), r.in(), bf16);
    }

    /** A synthetic linear weight of layer {@code layer}: generated in its slot, copied down to its pieces. */
    private Linear generatedLinear(int layer, int out, int in, long seed, DeviceKernels k) {
        long count = (long) out * in;
        List<Piece> pieces = layerPieces.get(layer);
        int firstPiece = pieces.size();
        CUdeviceptr w = reserve(layer, count);
        fill(w, count, seed, SyntheticModel.amplitude(in), k);
        CudaRuntime.sync();
        for (int i = firstPiece; i < pieces.size(); i++) {
            Piece p = pieces.get(i);
            cuMemcpyDtoH(p.host(), slots[layer % 2].withByteOffset(p.slotOffset()), p.bytes());
        }
        return new Linear(w, null, out, in, bf16);
    }

    /** Writes d (as bf16 / fp32) at byte offset byteOff of the weight whose pieces start at firstPiece. */
    private void put(int layer, int firstPiece, long byteOff, double[] d) {
        List<Piece> pieces = layerPieces.get(layer);
        int es = es();
        int i = 0;
        while (i < d.length) {
            long pos = byteOff + (long) i * es;
            Piece p = pieces.get(firstPiece + (int) (pos / PIECE));
            long inPiece = pos % PIECE;
            int n = (int) Math.min(d.length - i, (p.bytes() - inPiece) / es);
            ByteBuffer bb = p.host().getByteBuffer(inPiece, (long) n * es).order(ByteOrder.nativeOrder());
            if (bf16) for (int j = 0; j < n; j++) bb.putShort(CudaRuntime.bits16((float) d[i + j], fp16));
            else for (int j = 0; j < n; j++) bb.putFloat((float) d[i + j]);
            i += n;
        }
    }

    // ---------------------------------------------------------------- streaming during a forward

    /** Compute stream: wait until layer i's weights are in its slot (queues the upload if nothing did). */
    @Override
    public void acquire(int i) {
        int s = i % 2;
        if (slotLayer[s] != i) prefetch(i);
        cuStreamWaitEvent(null, uploaded[s], 0);
    }

    /** Compute stream is done with layer i once the work queued so far runs: queue layer i + 2 into its slot. */
    @Override
    public void release(int i) {
        int s = i % 2;
        cuEventRecord(slotFree[s], null);
        slotLayer[s] = -1;
        if (i + 2 < layers.size()) prefetch(i + 2);
    }

    /** Before a forward: queue layers 0 and 1 (each waits for its slot's last user on the compute stream). */
    @Override
    public void startForward() {
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

    @Override
    boolean holdsMore() {
        return !hostBlocks.isEmpty();
    }

    @Override
    void freeMore() {
        for (Pointer h : hostBlocks) cuMemFreeHost(h);
        hostBlocks.clear();
    }
}
