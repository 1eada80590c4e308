package modeldiff.forward.cuda;

import modeldiff.forward.cuda.DeviceKernels.Linear;
import modeldiff.model.Family;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;

/**
 * Seeded uniform weights of a config's shapes, generated on the GPU and resident (benchmarks: nothing to read from
 * disk). Linear weights ~U(±1/√in), norm weights 1 (0 for unit-offset norms), no biases. {@link StreamedModel#synthetic}
 * makes the same weights streamed.
 */
public final class SyntheticModel extends DeviceModel {
    private SyntheticModel(ModelConfig c, Precision p) {
        super(c, p, new Object());
    }

    public static SyntheticModel generate(ModelConfig c, boolean bf16, long seed, DeviceKernels k) {
        return generate(c, bf16 ? Precision.BF16 : Precision.FP32, seed, k);
    }

    /** In dtype p (fp32, bf16 or fp16). */
    public static SyntheticModel generate(ModelConfig c, Precision p, long seed, DeviceKernels k) {
        return building(new SyntheticModel(c, p), dm -> {
            build(dm, seed, k, (layer, out, in, s) -> new Linear(dm.random((long) out * in, s, amplitude(in), k), null, out, in, dm.bf16));
            CudaRuntime.sync();
        });
    }

    /**
     * The same weights (same seeds) spread over device slots (issue #18): each part generated in its slot's context by
     * that slot's kernels; a tied LM head on another slot than the embedding is generated again there from the
     * embedding's seed (the same values).
     */
    public static SyntheticModel generate(ModelConfig c, Precision p, long seed, Placement where) {
        java.util.Map<CudaRuntime, DeviceKernels> ks = new java.util.IdentityHashMap<>();
        return building(new SyntheticModel(c, p), dm -> {
            dm.placement = where;
            try {
                java.util.function.IntFunction<DeviceKernels> at = part -> {
                    CudaRuntime rt = part == EMBEDDING ? where.first() : part == HEAD ? where.head() : where.of(part);
                    CudaRuntime.use(rt);
                    return ks.computeIfAbsent(rt, DeviceKernels::new);
                };
                build(dm, seed, at, (layer, out, in, s) -> new Linear(dm.random((long) out * in, s, amplitude(in), at.apply(layer)), null,
                        out, in, dm.bf16), where.head() != where.first());
                for (CudaRuntime rt : where.used()) rt.synchronize();
            } finally {
                CudaRuntime.use(null);
            }
        });
    }

    /** {@link #build}'s part numbers besides the layers (0 …): the embedding, the final norm and LM head. */
    static final int EMBEDDING = -1, HEAD = -2;

    /** Places one synthetic linear weight of layer {@code layer}, generated from {@code seed}. */
    interface LinearMaker {
        Linear make(int layer, int out, int in, long seed);
    }

    static float amplitude(int in) {
        return (float) (1 / Math.sqrt(in));
    }

    /** The linear elements of one synthetic layer. */
    static long layerElems(ModelConfig c) {
        boolean gated = c.family.mlp == Family.Mlp.GATED;
        int H = c.hiddenSize;
        return 2L * c.qDim() * H + 2L * c.kvDim() * H + (gated ? 3L : 2L) * c.intermediateSize * H;
    }

    /**
     * Fills dm with seeded weights (seeds in a fixed order, so resident and streamed models get the same values):
     * embedding and LM head resident, each layer's linear weights placed by {@code linear}.
     */
    static void build(DeviceModel dm, long seed, DeviceKernels k, LinearMaker linear) {
        build(dm, seed, part -> k, linear, false);
    }

    /**
     * As above, {@code at} giving the kernels for each part ({@link #EMBEDDING}, {@link #HEAD}, layer i; a split
     * model's also makes that part's slot current); tiedCopy: a tied head generated again (on the head's slot).
     */
    static void build(DeviceModel dm, long seed, java.util.function.IntFunction<DeviceKernels> at, LinearMaker linear, boolean tiedCopy) {
        ModelConfig c = dm.config;
        int H = c.hiddenSize, ff = c.intermediateSize, hd = c.headDim;
        long s = seed;
        long embedSeed = s;
        dm.embedding = dm.random((long) c.vocabSize * H, s++, 0.05f, at.apply(EMBEDDING));
        DeviceKernels kh = at.apply(HEAD);
        dm.lmHead = !c.tieWordEmbeddings ? dm.random((long) c.vocabSize * H, s++, amplitude(H), kh)
                : tiedCopy ? dm.random((long) c.vocabSize * H, embedSeed, 0.05f, kh) : dm.embedding;
        float one = c.family.norm.unitOffset() ? 0f : 1f;
        dm.finalNorm = dm.constNorm(H, one, kh);
        boolean gated = c.family.mlp == Family.Mlp.GATED, qk = c.family.qkNorm, sandwich = c.family.sandwichNorms;
        for (int i = 0; i < c.numLayers; i++) {
            DeviceKernels k = at.apply(i);
            Linear q = linear.make(i, c.qDim(), H, s++), kk = linear.make(i, c.kvDim(), H, s++),
                    v = linear.make(i, c.kvDim(), H, s++), o = linear.make(i, H, c.qDim(), s++);
            Linear gate = gated ? linear.make(i, ff, H, s++) : null;
            Linear up = linear.make(i, ff, H, s++), down = linear.make(i, H, ff, s++);
            dm.layers.add(new Layer(dm.constNorm(H, one, k), q, kk, v, o,
                    qk ? dm.constNorm(hd, one, k) : null, qk ? dm.constNorm(hd, one, k) : null,
                    sandwich ? dm.constNorm(H, one, k) : null, dm.constNorm(H, one, k), gate, up, down,
                    sandwich ? dm.constNorm(H, one, k) : null));
        }
    }
}
