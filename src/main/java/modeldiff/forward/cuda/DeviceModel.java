package modeldiff.forward.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import modeldiff.model.Family;
import modeldiff.model.LayerWeights;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.util.ArrayList;
import java.util.List;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

/**
 * A model's weights on the GPU, uploaded once, layer by layer (host copies of one layer at a time). Linear weights
 * and the embedding are bf16 (bf16 mode) or fp32 [out, in]; norm weights, biases and learned positions are fp32
 * buffers (holding bf16-rounded values in bf16 mode, as from_pretrained(dtype=bfloat16) casts every parameter).
 */
public final class DeviceModel implements AutoCloseable {
    public record Lin(CUdeviceptr w, CUdeviceptr b, int out, int in) {
    }

    public record Nrm(CUdeviceptr w, CUdeviceptr b, int dim) {
    }

    public record Layer(Nrm attnNorm, Lin q, Lin k, Lin v, Lin o, Nrm qNorm, Nrm kNorm, Nrm postAttnNorm, Nrm mlpNorm,
                        Lin gate, Lin up, Lin down, Nrm postMlpNorm) {
    }

    public final boolean bf16;
    public final ModelConfig config;
    public final Object key;
    CUdeviceptr embedding, positions, lmHead;
    Nrm finalNorm;
    final List<Layer> layers = new ArrayList<>();
    private final List<CUdeviceptr> owned = new ArrayList<>();
    long bytes;

    private DeviceModel(ModelConfig config, boolean bf16, Object key) {
        this.config = config;
        this.bf16 = bf16;
        this.key = key;
    }

    /** Uploads every weight of the model. */
    public static DeviceModel upload(Model model, boolean bf16) {
        ModelConfig c = model.config;
        DeviceModel dm = new DeviceModel(c, bf16, model);
        try {
            int H = c.hiddenSize;
            dm.embedding = dm.matrix(model.embedding(), 0, (long) c.vocabSize * H);
            dm.lmHead = model.lmHead() == model.embedding() ? dm.embedding : dm.matrix(model.lmHead(), 0, (long) c.vocabSize * H);
            if (model.positionEmbedding() != null)
                dm.positions = dm.vector(TensorStore.readDoubles(model.positionEmbedding(), 0, model.positionEmbedding().elementCount()));
            dm.finalNorm = dm.norm(model.finalNorm());
            for (int i = 0; i < c.numLayers; i++) {
                LayerWeights w = model.layer(i);
                dm.layers.add(new Layer(dm.norm(w.attnNorm()), dm.linear(w.q()), dm.linear(w.k()), dm.linear(w.v()),
                        dm.linear(w.o()), dm.norm(w.qNorm()), dm.norm(w.kNorm()), dm.norm(w.postAttnNorm()),
                        dm.norm(w.mlpNorm()), dm.linear(w.gate()), dm.linear(w.up()), dm.linear(w.down()),
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
     * Linear weights ~U(±1/√in), norm weights 1 (0 for unit-offset norms), no biases.
     */
    public static DeviceModel synthetic(ModelConfig c, boolean bf16, long seed, Kernels k) {
        DeviceModel dm = new DeviceModel(c, bf16, new Object());
        int H = c.hiddenSize, ff = c.intermediateSize;
        long[] s = {seed};
        dm.embedding = dm.random((long) c.vocabSize * H, s[0]++, 0.05f, k);
        dm.lmHead = c.tieWordEmbeddings ? dm.embedding : dm.random((long) c.vocabSize * H, s[0]++, (float) (1 / Math.sqrt(H)), k);
        float one = c.family.norm.unitOffset() ? 0f : 1f;
        dm.finalNorm = dm.constNorm(H, one, k);
        boolean gated = c.family.mlp == Family.Mlp.GATED;
        for (int i = 0; i < c.numLayers; i++) {
            dm.layers.add(new Layer(dm.constNorm(H, one, k),
                    dm.randomLin(c.qDim(), H, s[0]++, k), dm.randomLin(c.kvDim(), H, s[0]++, k),
                    dm.randomLin(c.kvDim(), H, s[0]++, k), dm.randomLin(H, c.qDim(), s[0]++, k),
                    c.family.qkNorm ? dm.constNorm(c.headDim, one, k) : null, c.family.qkNorm ? dm.constNorm(c.headDim, one, k) : null,
                    c.family.sandwichNorms ? dm.constNorm(H, one, k) : null, dm.constNorm(H, one, k),
                    gated ? dm.randomLin(ff, H, s[0]++, k) : null, dm.randomLin(ff, H, s[0]++, k), dm.randomLin(H, ff, s[0]++, k),
                    c.family.sandwichNorms ? dm.constNorm(H, one, k) : null));
        }
        CudaRuntime.sync();
        return dm;
    }

    private CUdeviceptr random(long n, long seed, float amp, Kernels k) {
        CUdeviceptr p = own(CudaRuntime.alloc(n * (bf16 ? 2 : 4)));
        bytes += n * (bf16 ? 2 : 4);
        if (bf16) k.fillBf16(p, n, seed, amp, 0f);
        else k.fillF32(p, n, seed, amp, 0f);
        return p;
    }

    private Lin randomLin(int out, int in, long seed, Kernels k) {
        return new Lin(random((long) out * in, seed, (float) (1 / Math.sqrt(in)), k), null, out, in);
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

    private Lin linear(LinearRef r) {
        if (r == null) return null;
        CUdeviceptr w;
        if (r.conv1d()) w = matrix(r.loadWeight());
        else w = matrix(r.weight(), (long) r.outStart() * r.in(), (long) r.out() * r.in());
        return new Lin(w, vector(r.loadBias()), r.out(), r.in());
    }

    private CUdeviceptr matrix(double[] d) {
        CUdeviceptr p = own(CudaRuntime.alloc((long) d.length * (bf16 ? 2 : 4)));
        copyChunk(p, 0, d);
        bytes += (long) d.length * (bf16 ? 2 : 4);
        return p;
    }

    /** A stored tensor's elements [first, first + count), read and uploaded in chunks (an LM head can be GBs). */
    private CUdeviceptr matrix(TensorInfo t, long first, long count) {
        int es = bf16 ? 2 : 4;
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

    /** Bytes of weights on the device. */
    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        for (CUdeviceptr p : owned) CudaRuntime.free(p);
        owned.clear();
    }
}
