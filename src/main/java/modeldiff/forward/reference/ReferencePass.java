package modeldiff.forward.reference;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.MemoryEstimate;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.Recorder;
import modeldiff.forward.kernel.Gemm;
import modeldiff.forward.kernel.Parallel;
import modeldiff.forward.kernel.WeightPanels;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.LayerWeights;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.MoeWeights;
import modeldiff.model.NormRef;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;
import modeldiff.numeric.Activation;
import modeldiff.numeric.Precision;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;

/**
 * The ground truth: the forward pass written straight from the math, float64 everywhere. Weights are widened
 * exactly from their stored dtype; nothing is rounded on the way, and no shortcut a framework might take (fp32 RoPE
 * angles, fp32 softmax, fused kernels) is imitated. Other passes are judged by their distance from this one.
 *
 * Layout convention: activations are row-major [tokens, width] double arrays.
 * <p>
 * Speed without giving up exactness: matrix products go through {@link Gemm} (float64 fused multiply-add chains,
 * Vector API kernels, weights decoded tile by tile from the memory-mapped checkpoint, one layer's matrices mapped at a
 * time), and the work of a product or of attention is split over threads so that each output element is computed by
 * one task in a fixed order: the trace is bit-identical for any thread count.
 */
public final class ReferencePass implements ForwardPass {
    private final Fixes fixes;
    private final Parallel par;

    public ReferencePass() {
        this(Fixes.NONE);
    }

    /** Honours the fixes that change the math; rounding-only fixes (norm casts, softmax dtype) mean nothing in float64. */
    public ReferencePass(Fixes fixes) {
        this(fixes, Parallel.defaultThreads());
    }

    /** @param threads threads for matrix products and attention; the result does not depend on it */
    public ReferencePass(Fixes fixes, int threads) {
        this.fixes = fixes;
        this.par = Parallel.of(threads);
    }

    public int threads() {
        return par.threads();
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public String dtype() {
        return "float64";
    }

    /** Peak heap of one run of this pass: weights stay mapped, so it is the trace plus one layer's working set. */
    public MemoryEstimate memoryEstimate(ModelConfig c, int tokens, ProbeLevel level) {
        return MemoryEstimate.of(c, tokens, level, par.threads(), 8);
    }

    @Override
    public Trace run(Model model, ForwardInput input, ProbeLevel level) {
        return runLayers(model, input, level, 0, model.config.numLayers, null);
    }

    @Override
    public boolean canReplay() {
        return true;
    }

    @Override
    public Trace runLayers(Model model, ForwardInput input, ProbeLevel level, int from, int to, double[] residualIn) {
        ModelConfig c = model.config;
        Family f = model.family;
        input = input.withTokens(fixes.tokens(input.tokens(), c));
        int T = input.length(), H = c.hiddenSize;
        memoryEstimate(c, T, level).require("the reference pass on " + model.name() + " (" + T + " tokens, --probes "
                + level.name().toLowerCase(java.util.Locale.ROOT) + ")");
        Trace trace = new Trace("modeldiff reference" + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(), "cpu",
                input.tokens(), input.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        Recorder rec = Recorder.of(trace, input, level);
        Family.NormKind normKind = effectiveNorm(f.norm);
        double eps = fixes.eps(c);
        Activation activation = fixes.activation(c);

        double[] x;                                                        // [T, H] residual stream
        if (residualIn == null) {
            if (from != 0) throw new IllegalArgumentException("starting at layer " + from + " needs its input");
            x = rec.put("embed", H, embed(model, input, fixes.embedScale(c)));
        } else {
            if (residualIn.length != T * H) throw new IllegalArgumentException("residual must be [" + T + ", " + H + "]");
            x = residualIn.clone();
        }

        for (int i = from; i < to; i++) {
            LayerWeights w = model.layer(i);
            LayerSpec spec = c.layers.get(i);
            String p = "layers." + i + ".";

            double[] a = rec.put(p + "attn_norm", H,
                    w.attnNorm() == null ? x.clone() : norm(x, T, H, w.attnNorm(), normKind, eps));   // [T, H]
            double[] att;                                                       // [T, heads*v_hd]
            if (model.mla(i) != null) {   // DeepSeek-V3: q, k, v from the latent projections
                att = ReferenceMla.attention(rec, p, a, T, new ReferenceMla.Setup(model.mla(i), c, spec, input, fixes, par));
            } else {
                double[] q = linear(a, T, w.q(), par);                              // [T, heads*hd]
                double[] k = linear(a, T, w.k(), par);                              // [T, kv_heads*hd]
                double[] v = linear(a, T, w.v(), par);                              // [T, kv_heads*hd]
                if (f.qkNorm && !fixes.qkNormOff) {     // per head, or over the whole projection (OLMo 2, OLMoE)
                    q = qkNorm(q, T, c.numHeads, c.headDim, w.qNorm(), normKind, eps);
                    k = qkNorm(k, T, c.numKvHeads, c.headDim, w.kNorm(), normKind, eps);
                }
                var rope = f.learnedPositions ? null : fixes.layerRope(spec, c);
                if (rope != null) {
                    Rope.Frequencies freq = RopeFormulas.frequencies(rope, Rope.rotaryDim(c.headDim, rope.partialRotaryFactor()),
                            input.positionOffset() + T);
                    boolean pairs = fixes.qkInterleaved != f.llama4Attention;   // Llama 4 rotates (2j, 2j+1) natively
                    rotate(q, T, c.numHeads, c.headDim, freq, input, fixes, pairs);
                    rotate(k, T, c.numKvHeads, c.headDim, freq, input, fixes, pairs);
                }
                if (spec.llama4() != null)
                    ReferenceLlama4.afterRope(q, k, T, c.numHeads, c.numKvHeads, c.headDim, spec.llama4(), input, fixes, eps);
                q = rec.put(p + "q", c.qDim(), q);
                k = rec.put(p + "k", c.kvDim(), k);
                v = rec.put(p + "v", c.kvDim(), v);
                att = rec.put(p + "attn", c.qDim(),
                        attention(q, k, v, T, new HeadDims(c.numHeads, c.numKvHeads, c.headDim, c.headDim), fixes.window(spec),
                                fixes.attnScale(spec), fixes.attnSoftcap(c), sinks(model, i), par,
                                ReferenceLlama4.firstKeys(spec, T, input, fixes))); // [T, heads*hd]
            }
            double[] o = rec.put(p + "attn_out", H, linear(att, T, w.o(), par));   // [T, H]
            if (w.postAttnNorm() != null) o = norm(o, T, H, w.postAttnNorm(), normKind, eps);
            boolean parallel = fixes.parallelResidual(c);   // GPT-NeoX: the MLP reads the block's input too
            double[] blockIn = parallel ? x.clone() : null;
            if (!parallel) addInPlace(x, o);

            double[] mIn = parallel ? blockIn : x;
            double[] m = rec.put(p + "mlp_norm", H,
                    w.mlpNorm() == null ? mIn.clone() : norm(mIn, T, H, w.mlpNorm(), normKind, eps));   // [T, H]
            MoeWeights experts = model.moe(i);
            double[] mo;                                                   // [T, H]
            if (experts != null) {
                var setup = new ReferenceMoe.Setup(c.moe, fixes, activation, par);
                ReferenceMoe.Routing routing = ReferenceMoe.route(rec, p, m, T, experts, setup);
                mo = ReferenceMoe.experts(m, T, H, experts, routing, setup);
            } else {
                double[] act;                                              // [T, ff]
                if (f.mlp == Family.Mlp.GATED) {
                    act = linear(m, T, fixes.swapGateUp ? w.up() : w.gate(), par);
                    double[] up = linear(m, T, fixes.swapGateUp ? w.gate() : w.up(), par);
                    for (int j = 0; j < act.length; j++) act[j] = activation.apply(act[j]) * up[j];
                } else {
                    act = linear(m, T, w.up(), par);
                    for (int j = 0; j < act.length; j++) act[j] = activation.apply(act[j]);
                }
                act = rec.put(p + "mlp_act", c.intermediateSize, act);
                mo = linear(act, T, w.down(), par);
            }
            mo = rec.put(p + "mlp_out", H, mo);
            if (w.postMlpNorm() != null) mo = norm(mo, T, H, w.postMlpNorm(), normKind, eps);
            if (parallel) addInPlace(mo, o);     // HF: mlp_output + attn_output + hidden_states
            addInPlace(x, mo);
            x = rec.put("layers." + i, H, x);
        }

        if (to < c.numLayers) return trace;
        double[] fn = rec.put("final_norm", H, norm(x, T, H, model.finalNorm(), normKind, eps));
        double[] logits = new double[T * c.vocabSize];                       // [T, vocab], the head streamed in tiles
        try (WeightPanels head = WeightPanels.ofMatrix(model.lmHead(), null)) {
            Gemm.multiply(fn, T, H, head, c.vocabSize, null, logits, par);
        }
        double finalCap = fixes.finalSoftcap(c);
        if (!Double.isNaN(finalCap)) softcap(logits, finalCap);
        rec.put("logits", c.vocabSize, logits);
        return trace;
    }

    /**
     * q/k norm: over each head (Qwen3, Gemma 3), or over the whole projection (OLMo 2). qk_norm.per_head takes a
     * whole-projection norm per head, each head scaled by its own slice of the full-length weight.
     */
    private double[] qkNorm(double[] x, int T, int heads, int hd, NormRef ref, Family.NormKind kind, double eps) {
        if (ref.weight().elementCount() == hd) return norm(x, T * heads, hd, ref, kind, eps);
        if (!fixes.qkNormPerHead) return norm(x, T, heads * hd, ref, kind, eps);
        double[] w = ref.loadWeight();
        double offset = kind.unitOffset() ? 1.0 : 0.0;
        double[] out = new double[x.length];
        for (int r = 0; r < T * heads; r++) {
            int base = r * hd, wb = (r % heads) * hd;
            double sq = 0;
            for (int j = 0; j < hd; j++) sq += x[base + j] * x[base + j];
            double inv = 1.0 / Math.sqrt(sq / hd + eps);
            for (int j = 0; j < hd; j++) out[base + j] = x[base + j] * inv * (w[wb + j] + offset);
        }
        return out;
    }

    /** Token rows times the embedding scale, plus learned position rows (GPT-2). */
    static double[] embed(Model model, ForwardInput input, double embedScale) {
        ModelConfig c = model.config;
        int H = c.hiddenSize, T = input.length();
        double[] x = new double[T * H];
        for (int t = 0; t < T; t++) {
            int id = input.tokens()[t];
            if (id < 0 || id >= c.vocabSize)
                throw new BadInputException("token id " + id + " at index " + t + " is outside the vocabulary [0, " + c.vocabSize + ")");
            double[] row = TensorStore.readDoubles(model.embedding(), (long) id * H, H);
            for (int j = 0; j < H; j++) x[t * H + j] = row[j] * embedScale;
        }
        TensorInfo wpe = model.positionEmbedding();
        if (wpe != null) {
            for (int t = 0; t < T; t++) {
                long pos = input.position(t);
                if (pos >= wpe.shape()[0])
                    throw new BadInputException("position " + pos + " is beyond the model's " + wpe.shape()[0] + " learned positions");
                double[] row = TensorStore.readDoubles(wpe, pos * H, H);
                for (int j = 0; j < H; j++) x[t * H + j] += row[j];
            }
        }
        return x;
    }

    /** RMSNorm or LayerNorm over each of {@code rows} rows of width {@code dim}. */
    static double[] norm(double[] x, int rows, int dim, NormRef ref, Family.NormKind kind, double eps) {
        double[] w = ref.loadWeight();
        double[] b = ref.loadBias();
        double offset = kind.unitOffset() ? 1.0 : 0.0;
        double[] out = new double[rows * dim];
        for (int r = 0; r < rows; r++) {
            int base = r * dim;
            double mean = 0;
            if (kind.centered()) {
                for (int j = 0; j < dim; j++) mean += x[base + j];
                mean /= dim;
            }
            double sq = 0;
            for (int j = 0; j < dim; j++) {
                double d = x[base + j] - mean;
                sq += d * d;
            }
            double inv = 1.0 / Math.sqrt(sq / dim + eps);
            for (int j = 0; j < dim; j++) {
                double y = (x[base + j] - mean) * inv * (w[j] + offset);
                out[base + j] = b == null ? y : y + b[j];
            }
        }
        return out;
    }

    /** y = x·Wᵀ + b for x [rows, in], W [out, in]: each element a float64 fma chain over in, then + b. */
    static double[] linear(double[] x, int rows, LinearRef ref, Parallel par) {
        double[] b = ref.loadBias();
        double[] y = new double[rows * ref.out()];
        try (WeightPanels w = WeightPanels.of(ref, null)) {
            Gemm.multiply(x, rows, ref.in(), w, ref.out(), b, y, par);
        }
        return y;
    }

    /**
     * rotate_half RoPE on the first rotaryDim dimensions of each head; the rest pass through (partial rotary).
     * With qk.interleaved the pairs are (2j, 2j+1) as in GPT-J / Meta's original layout; with rope.bf16_angles the
     * position and frequency are rounded to bf16 before their product (the Keras mixed-precision bug).
     */
    static void rotate(double[] x, int T, int heads, int headDim, Rope.Frequencies freq, ForwardInput input, Fixes fixes) {
        rotate(x, T, heads, headDim, freq, input, fixes, fixes.qkInterleaved);
    }

    /** @param interleaved pairs (2j, 2j+1) rather than (j, j + half) */
    static void rotate(double[] x, int T, int heads, int headDim, Rope.Frequencies freq, ForwardInput input, Fixes fixes,
                       boolean interleaved) {
        int half = freq.invFreq().length;
        double scale = freq.attentionScaling();
        for (int t = 0; t < T; t++) {
            double pos = input.position(t);
            for (int j = 0; j < half; j++) {
                double inv = freq.invFreq()[j];
                double angle = fixes.ropeBf16Angles
                        ? Precision.BF16.round(pos) * Precision.BF16.round(inv)
                        : pos * inv;
                double cos = Math.cos(angle) * scale, sin = Math.sin(angle) * scale;
                for (int h = 0; h < heads; h++) {
                    int base = (t * heads + h) * headDim;
                    int i1 = interleaved ? base + 2 * j : base + j;
                    int i2 = interleaved ? base + 2 * j + 1 : base + j + half;
                    double x1 = x[i1], x2 = x[i2];
                    x[i1] = x1 * cos - x2 * sin;
                    x[i2] = x2 * cos + x1 * sin;
                }
            }
        }
    }

    /** gpt-oss's per-head sink logits, or null (no sinks, or attn.no_sinks). */
    private double[] sinks(Model model, int layer) {
        TensorInfo t = model.sinks(layer);
        return t == null || fixes.attnNoSinks ? null : TensorStore.readDoubles(t, 0, model.config.numHeads);
    }

    /**
     * Causal (optionally sliding-window) attention with grouped KV heads and optional tanh soft-cap. Query t sees key
     * s when s ≤ t and, with a window W, t − s < W (HF's sliding_window semantics: W keys including itself). With
     * {@code sinks} (gpt-oss), one more logit per head joins every softmax, taking probability mass and giving no
     * value: p_s = exp(score_s) / (Σ exp(score) + exp(sink)).
     */
    static double[] attention(double[] q, double[] k, double[] v, int T, ModelConfig c, int window, double scale, double cap,
                              double[] sinks, Parallel par) {
        return attention(q, k, v, T, new HeadDims(c.numHeads, c.numKvHeads, c.headDim, c.headDim), window, scale, cap, sinks, par);
    }

    /** Heads of q, of k/v, and the widths of a q/k head and of a v head (MLA's differ). */
    record HeadDims(int heads, int kvHeads, int qkDim, int vDim) {
    }

    static double[] attention(double[] q, double[] k, double[] v, int T, HeadDims dims, int window, double scale, double cap,
                              double[] sinks, Parallel par) {
        return attention(q, k, v, T, dims, window, scale, cap, sinks, par, null);
    }

    /** @param firstKeys per query, the first key it may see (Llama 4's chunks), or null */
    static double[] attention(double[] q, double[] k, double[] v, int T, HeadDims dims, int window, double scale, double cap,
                              double[] sinks, Parallel par, int[] firstKeys) {
        int heads = dims.heads(), kvHeads = dims.kvHeads(), hd = dims.qkDim(), vd = dims.vDim(), group = heads / kvHeads;
        double[] out = new double[T * heads * vd];
        // One task per head: a head writes only its own columns of out, in the same order whatever thread runs it.
        par.forEach(heads, h -> {
            double[] scores = new double[T];
            int kvh = h / group;
            for (int t = 0; t < T; t++) {
                int first = window > 0 ? Math.max(0, t - window + 1) : 0;
                if (firstKeys != null) first = Math.max(first, firstKeys[t]);
                double max = Double.NEGATIVE_INFINITY;
                for (int s = first; s <= t; s++) {
                    double dot = 0;
                    int qb = (t * heads + h) * hd, kb = (s * kvHeads + kvh) * hd;
                    for (int d = 0; d < hd; d++) dot += q[qb + d] * k[kb + d];
                    double sc = dot * scale;
                    if (!Double.isNaN(cap)) sc = cap * Math.tanh(sc / cap);
                    scores[s] = sc;
                    max = Math.max(max, sc);
                }
                if (sinks != null) max = Math.max(max, sinks[h]);
                double sum = sinks == null ? 0 : Math.exp(sinks[h] - max);
                for (int s = first; s <= t; s++) {
                    scores[s] = Math.exp(scores[s] - max);
                    sum += scores[s];
                }
                int ob = (t * heads + h) * vd;
                for (int s = first; s <= t; s++) {
                    double pr = scores[s] / sum;
                    int vb = (s * kvHeads + kvh) * vd;
                    for (int d = 0; d < vd; d++) out[ob + d] += pr * v[vb + d];
                }
            }
        });
        return out;
    }

    /** The norm kind after norm.unit_offset / norm.no_unit_offset. */
    private Family.NormKind effectiveNorm(Family.NormKind kind) {
        boolean unit = fixes.unitOffset(kind);
        if (unit == kind.unitOffset()) return kind;
        if (kind.centered()) return unit ? Family.NormKind.LAYER_UNIT_OFFSET : Family.NormKind.LAYER;
        return unit ? Family.NormKind.RMS_UNIT_OFFSET : Family.NormKind.RMS;
    }

    static void softcap(double[] x, double cap) {
        for (int i = 0; i < x.length; i++) x[i] = cap * Math.tanh(x[i] / cap);
    }

    static void addInPlace(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) x[i] += y[i];
    }
}
