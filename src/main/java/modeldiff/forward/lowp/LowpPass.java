package modeldiff.forward.lowp;

import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.MemoryEstimate;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.Recorder;
import modeldiff.forward.kernel.FloatGemm;
import modeldiff.forward.kernel.Gemm;
import modeldiff.forward.kernel.PanelSource;
import modeldiff.forward.kernel.Parallel;
import modeldiff.forward.kernel.WeightPanels;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.LayerWeights;
import modeldiff.model.DType;
import modeldiff.model.LinearRef;
import modeldiff.model.MappedTensor;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.MoeWeights;
import modeldiff.model.NormRef;
import modeldiff.model.RopeSpec;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;
import modeldiff.numeric.Activation;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.apache.commons.math3.special.Erf;

/**
 * The model as HF transformers' eager path computes it in bf16 / fp16 / fp32 on a GPU: every PyTorch op computes in
 * fp32 ("opmath") from dtype inputs and rounds its result once; matmuls accumulate in fp32; reductions accumulate in
 * fp32; and the explicit casts of each family's modeling code sit where HF put them (each site marked
 * with its rounding point's name in a comment, e.g. {@code // RESIDUAL}; the table is docs/precision.md). Activations are float arrays holding dtype-representable values.
 *
 * Written independently of the float64 reference: it shares the model description (which weights, which window),
 * never the arithmetic.
 */
public final class LowpPass implements ForwardPass {
    private final Precision p;
    private final Fixes fixes;
    /**
     * When non-null, every fp32 result is nudged one fp32 ulp up or down (seeded) before it is rounded to the dtype.
     * That is what another correct kernel does (a different summation order, CUDA's 2-ulp rsqrtf): values sitting
     * on a near-tie round the other way. The distance between a nudged and a plain run is the measured noise floor of
     * "same ops, same precision".
     */
    private final java.util.SplittableRandom nudge;
    /** Threads for the matrix products; results do not depend on it (see Gemm). */
    private final Parallel par = Parallel.of(Parallel.defaultThreads());

    public LowpPass(Precision precision, Fixes fixes) {
        this(precision, fixes, 0);
    }

    /**
     * Dot products summed as a running fp32 sum (as a plain fp32 GEMM loop does) instead of exactly-then-rounded. Used
     * to measure what fp32 accumulation costs against float64: CPU fp32 GEMMs accumulate in fp32.
     */
    private final boolean sequentialSums;

    /** @param nudgeSeed 0 for the faithful pass; otherwise the seed of the ±1-ulp nudges (see {@link #nudge}). */
    public LowpPass(Precision precision, Fixes fixes, long nudgeSeed) {
        this(precision, fixes, nudgeSeed, false);
    }

    /** Set per run from the family: OLMo 2 keeps cos/sin in fp32 (Family.ropeInFp32). */
    private boolean cosSinFp32;
    /** Set per run: RoPE on interleaved pairs (Llama 4 natively, flipped by qk.interleaved), and the run's input (positions). */
    private boolean ropePairs;
    private ForwardInput runInput;

    public LowpPass(Precision precision, Fixes fixes, long nudgeSeed, boolean sequentialSums) {
        this.sequentialSums = sequentialSums;
        this.nudge = nudgeSeed == 0 ? null : new java.util.SplittableRandom(nudgeSeed);
        if (precision != Precision.BF16 && precision != Precision.FP16 && precision != Precision.FP32)
            throw new BadInputException("lowp runs in bf16, fp16 or fp32, not " + precision.id());
        this.p = precision;
        this.fixes = fixes;
    }

    @Override
    public String name() {
        return "lowp:" + switch (p) {
            case BF16 -> "bf16";
            case FP16 -> "fp16";
            default -> "fp32";
        };
    }

    @Override
    public String dtype() {
        return p.id();
    }

    /**
     * Slices of [0, n) over the pass's threads, for work whose result does not depend on the slicing. With nudges
     * (one seeded random sequence, drawn in row-major order) everything runs in order on this thread.
     */
    private void slices(int n, int grain, Parallel.Slice body) {
        if (nudge != null) body.accept(0, n);
        else par.forRanges(n, grain, body);
    }

    /** One PyTorch op's result: an fp32 value rounded to the dtype. */
    private float toDtype(float v) {
        return p.round(v);
    }

    /**
     * An fp32 result another correct kernel may compute one ulp apart: only results that were rounded to fp32 at
     * all (exact products and sums of dtype values are the same in every kernel).
     */
    private float nudged(float f, double exact, int terms) {
        if (nudge == null || f == exact || !Float.isFinite(f)) return f;
        // bf16: one fp32 ulp (another kernel's rsqrtf or summation order) reproduces the near-tie flips seen in HF's
        // bf16 traces. fp16: PyTorch lets cuBLAS reduce fp16 GEMMs in reduced precision by default
        // (allow_fp16_reduced_precision_reduction), and HF's fp16 traces differ more; another order of an n-term sum,
        // sqrt(n) ulps away (a random walk of rounding errors), covers them (docs/metrics.md has the measurements).
        long ulps = p == Precision.FP16 ? Math.max(1, Math.round(Math.sqrt(terms))) : 1;
        float step = ulps * Math.ulp(f);
        return nudge.nextBoolean() ? f + step : f - step;
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
        cosSinFp32 = f.ropeInFp32 || f.llama4Attention;   // Llama 4: complex product with fp32 freqs_cis, one cast back
        ropePairs = fixes.qkInterleaved != f.llama4Attention;
        int[] tokens = fixes.tokens(input.tokens(), c);
        ForwardInput in = input.withTokens(tokens);
        runInput = in;
        int T = in.length(), H = c.hiddenSize, hd = c.headDim;
        MemoryEstimate.of(c, T, level, par.threads(), 4).require(name() + " on " + model.name() + " (" + T + " tokens, --probes "
                + level.name().toLowerCase(java.util.Locale.ROOT) + ")");
        Trace trace = new Trace("modeldiff " + name() + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(), "cpu (emulated)",
                tokens, in.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        Recorder rec = Recorder.of(trace, in, level);

        float[] x;                                                         // [T, H] residual stream
        if (residualIn == null) {
            if (from != 0) throw new IllegalArgumentException("starting at layer " + from + " needs its input");
            x = rec.put("embed", H, embed(model, in), p);
        } else {
            if (residualIn.length != T * H) throw new IllegalArgumentException("residual must be [" + T + ", " + H + "]");
            x = new float[T * H];
            for (int j = 0; j < x.length; j++) x[j] = (float) p.round(residualIn[j]);
        }
        for (int i = from; i < to; i++) {
            LayerWeights w = model.layer(i);
            LayerSpec spec = c.layers.get(i);
            String pre = "layers." + i + ".";

            float[] a = rec.put(pre + "attn_norm", H, w.attnNorm() == null ? x.clone() : norm(x, T, H, w.attnNorm(), f, c), p); // [T, H]
            float[] att;                                                   // [T, heads*v_hd]
            if (model.mla(i) != null) {   // DeepSeek-V3: q, k, v from the latent projections
                att = LowpMla.attention(rec, pre, a, T, new LowpMla.Setup(model.mla(i), c, spec, in, mlaOps(c, f, spec), p));
            } else {
                float[] q = linear(a, T, w.q());                               // [T, heads*hd]
                float[] k = linear(a, T, w.k());                               // [T, kv*hd]
                float[] v = linear(a, T, w.v());                               // [T, kv*hd]
                if (f.qkNorm && !fixes.qkNormOff) {     // per head, or over the whole projection (OLMo 2, OLMoE)
                    q = qkNorm(q, T, c.numHeads, hd, w.qNorm(), f, c);
                    k = qkNorm(k, T, c.numKvHeads, hd, w.kNorm(), f, c);
                }
                RopeSpec layerRope = f.learnedPositions ? null : fixes.layerRope(spec, c);
                if (layerRope != null) {
                    float[][] cs = cosSin(layerRope, hd, in);
                    rope(q, T, c.numHeads, hd, cs);
                    rope(k, T, c.numKvHeads, hd, cs);
                }
                if (spec.llama4() != null)
                    LowpLlama4.afterRope(q, k, T, c.numHeads, c.numKvHeads, hd, spec.llama4(), in, fixes, (float) fixes.eps(c), this::toDtype);
                q = rec.put(pre + "q", c.qDim(), q, p);
                k = rec.put(pre + "k", c.kvDim(), k, p);
                v = rec.put(pre + "v", c.kvDim(), v, p);
                att = rec.put(pre + "attn", c.qDim(), attention(q, k, v, T, c, f, spec, sinks(model, i)), p);   // [T, heads*hd]
            }
            float[] o = rec.put(pre + "attn_out", H, linear(att, T, w.o()), p);                  // [T, H]
            if (w.postAttnNorm() != null) o = norm(o, T, H, w.postAttnNorm(), f, c);
            boolean parallel = fixes.parallelResidual(c);   // GPT-NeoX: the MLP reads the block's input too
            float[] mIn = x;
            if (parallel) mIn = x.clone();
            else residual(x, o);

            float[] m = rec.put(pre + "mlp_norm", H, w.mlpNorm() == null ? mIn.clone() : norm(mIn, T, H, w.mlpNorm(), f, c), p); // [T, H]
            MoeWeights experts = model.moe(i);
            float[] mo;                                                    // [T, H]
            if (experts != null) {
                var ops = new LowpMoe.Ops(this::linear, g -> activation(g, c), this::toDtype, c.moe, fixes);
                LowpMoe.Routing routing = LowpMoe.route(rec, pre, p, m, T, experts, ops);
                mo = LowpMoe.experts(m, T, H, experts, routing, ops);
            } else {
                float[] act;                                               // [T, ff]
                if (f.mlp == Family.Mlp.GATED) {
                    LinearRef gateRef = fixes.swapGateUp ? w.up() : w.gate();
                    LinearRef upRef = fixes.swapGateUp ? w.gate() : w.up();
                    act = activation(linear(m, T, gateRef), c);
                    float[] up = linear(m, T, upRef);
                    float[] gated = act;
                    slices(act.length, 4096, (lo, hi) -> {
                        for (int j = lo; j < hi; j++) gated[j] = toDtype(gated[j] * up[j]);      // MLP_PRODUCT
                    });
                } else {
                    act = activation(linear(m, T, w.up()), c);
                }
                act = rec.put(pre + "mlp_act", c.intermediateSize, act, p);
                mo = linear(act, T, w.down());
            }
            mo = rec.put(pre + "mlp_out", H, mo, p);                   // [T, H]
            if (w.postMlpNorm() != null) mo = norm(mo, T, H, w.postMlpNorm(), f, c);
            if (parallel) residual(mo, o);       // HF: (mlp_output + attn_output) + hidden_states, each add rounded
            residual(x, mo);
            x = rec.put("layers." + i, H, x, p);
        }
        if (to < c.numLayers) return trace;
        float[] fn = rec.put("final_norm", H, norm(x, T, H, model.finalNorm(), f, c), p);
        float[] logits;
        try (WeightPanels head = WeightPanels.ofMatrix(model.lmHead(), weightRounding(model.lmHead().dtype()))) {
            logits = matmul(fn, T, H, head, c.vocabSize, null);                // the head streamed in tiles
        }
        double cap = fixes.finalSoftcap(c);
        if (!Double.isNaN(cap)) softcap(logits, (float) cap);
        rec.put("logits", c.vocabSize, logits, p);
        return trace;
    }

    /** The ops LowpMla borrows from this pass: its GEMMs, roundings, RoPE table and attention kernel. */
    private LowpMla.Ops mlaOps(ModelConfig c, Family f, LayerSpec spec) {
        return new LowpMla.Ops(this::linear, (x, rows, dim, ref) -> latentNorm(x, rows, dim, ref, f), this::cosSin,
                (q, k, v, T, dims) -> attention(q, k, v, T, dims, c, f, spec, null), this::toDtype, fixes);
    }

    /**
     * MLA's q_a_layernorm / kv_a_layernorm: the family's RMSNorm with HF's class-default eps 1e-6 (rms_norm_eps is
     * not passed to them; norm.eps=V replaces it too), rounding as the family's other RMSNorms do.
     */
    private float[] latentNorm(float[] x, int rows, int dim, NormRef ref, Family f) {
        float[] w = weights(ref.weight(), 0, dim);
        float[] out = new float[rows * dim];
        boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
        float eps = (float) fixes.latentNormEps();
        slices(rows, 8, (r0, r1) -> rmsRows(x, dim, w, eps, false, weightThenCast, out, r0, r1));
        return out;
    }

    // ---- embedding ----

    private float[] embed(Model model, ForwardInput in) {
        ModelConfig c = model.config;
        int H = c.hiddenSize, T = in.length();
        float[] x = new float[T * H];
        double scale = fixes.embedScale(c);
        // Gemma: normalizer = torch.tensor(hidden**0.5, dtype=dtype) — rounded (EMBED_SCALE_CONSTANT); the fp32 bug
        // variant multiplies in fp32 by the fp32 constant and rounds once.
        float scaleF = fixes.embedScaleFp32 ? (float) scale : toDtype((float) scale);
        for (int t = 0; t < T; t++) {
            int id = in.tokens()[t];
            if (id < 0 || id >= c.vocabSize) throw new BadInputException("token id " + id + " is outside the vocabulary");
            float[] row = weights(model.embedding(), (long) id * H, H);
            for (int j = 0; j < H; j++) x[t * H + j] = scale == 1.0 ? row[j] : toDtype(row[j] * scaleF);
        }
        TensorInfo wpe = model.positionEmbedding();
        if (wpe != null) {
            for (int t = 0; t < T; t++) {
                long pos = in.position(t);
                if (pos >= wpe.shape()[0]) throw new BadInputException("position " + pos + " is beyond the learned positions");
                float[] row = weights(wpe, pos * H, H);
                for (int j = 0; j < H; j++) x[t * H + j] = toDtype(x[t * H + j] + row[j]);
            }
        }
        return x;
    }

    // ---- norms ----

    private float[] norm(float[] x, int rows, int dim, NormRef ref, Family f, ModelConfig c) {
        return norm(x, rows, dim, ref, f, c, 0);
    }

    /** @param first index of the first weight (and bias) element used: a slice of a longer norm weight */
    private float[] norm(float[] x, int rows, int dim, NormRef ref, Family f, ModelConfig c, long first) {
        float[] w = weights(ref.weight(), first, dim);
        float[] b = ref.bias() == null ? null : weights(ref.bias(), first, dim);
        float eps = (float) fixes.eps(c);
        boolean unit = fixes.unitOffset(f.norm);
        float[] out = new float[rows * dim];
        if (f.norm.centered()) {
            // F.layer_norm: fp32 mean/var, y = (x − mean)·rstd·w + b in fp32, one rounding. LayerNorm1P passes
            // weight + 1 computed in the dtype (a rounded parameter).
            float[] gamma = new float[dim];
            for (int j = 0; j < dim; j++) gamma[j] = unit ? toDtype(w[j] + 1f) : w[j];
            for (int row = 0; row < rows; row++) {
                int base = row * dim;
                double sum = 0;
                for (int j = 0; j < dim; j++) sum += x[base + j];
                float mean = (float) (sum / dim);
                double sq = 0;
                for (int j = 0; j < dim; j++) {
                    double d = x[base + j] - (double) mean;
                    sq += d * d;
                }
                float rstd = (float) (1.0 / Math.sqrt((float) ((float) (sq / dim) + eps)));
                for (int j = 0; j < dim; j++) {
                    float y = ((x[base + j] - mean) * rstd) * gamma[j];
                    out[base + j] = toDtype(b == null ? y : y + b[j]);
                }
            }
            return out;
        }
        boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
        slices(rows, 8, (r0, r1) -> rmsRows(x, dim, w, eps, unit, weightThenCast, out, r0, r1));
        return out;
    }

    private void rmsRows(float[] x, int dim, float[] w, float eps, boolean unit, boolean weightThenCast, float[] out,
                         int r0, int r1) {
        for (int row = r0; row < r1; row++) {
            int base = row * dim;
            double sq = 0;
            for (int j = 0; j < dim; j++) sq += (double) x[base + j] * x[base + j];
            float var = (float) (sq / dim);
            double rsExact = 1.0 / Math.sqrt(var + eps);
            float rs = nudged((float) rsExact, rsExact, 1);
            for (int j = 0; j < dim; j++) {
                float xhat = x[base + j] * rs;
                if (weightThenCast) {
                    // Gemma: (x̂ · (1 + w.float())).to(dtype)
                    float scale = unit ? 1f + w[j] : w[j];
                    out[base + j] = toDtype(xhat * scale);
                } else {
                    // Llama: w · x̂.to(dtype); a (1+w) norm computed this way rounds (1 + w) in the dtype too.
                    float scale = unit ? toDtype(1f + w[j]) : w[j];
                    out[base + j] = toDtype(scale * toDtype(xhat));
                }
            }
        }
    }

    /**
     * q/k norm over each head (weight of head_dim), over the whole projection (OLMo 2), or, with qk_norm.per_head, a
     * whole-projection norm computed per head: each head's rows take their slice of the full weight.
     */
    private float[] qkNorm(float[] x, int T, int heads, int hd, NormRef ref, Family f, ModelConfig c) {
        if (ref.weight().elementCount() == hd) return norm(x, T * heads, hd, ref, f, c);
        if (!fixes.qkNormPerHead) return norm(x, T, heads * hd, ref, f, c);
        float[] out = new float[x.length];
        for (int h = 0; h < heads; h++) {
            float[] rows = new float[T * hd];
            for (int t = 0; t < T; t++) System.arraycopy(x, (t * heads + h) * hd, rows, t * hd, hd);
            float[] y = norm(rows, T, hd, ref, f, c, (long) h * hd);
            for (int t = 0; t < T; t++) System.arraycopy(y, t * hd, out, (t * heads + h) * hd, hd);
        }
        return out;
    }

    // ---- linear layers ----

    private float[] linear(float[] x, int rows, LinearRef ref) {
        float[] b = ref.hasBias() ? toFloat(ref.loadBias()) : null;
        try (WeightPanels w = WeightPanels.of(ref, weightRounding(ref.weight().dtype()))) {
            return matmul(x, rows, ref.in(), w, ref.out(), b);
        }
    }

    /** WEIGHT_LOAD: stored values rounded to the dtype; null (no work) where every stored value is already one. */
    private MappedTensor.FloatRounding weightRounding(DType stored) {
        boolean exact = switch (stored) {
            case BF16 -> p == Precision.BF16 || p == Precision.FP32;
            case F16 -> p == Precision.FP16 || p == Precision.FP32;
            case F32 -> p == Precision.FP32;
            default -> false;
        };
        return exact ? null : this::toDtype;
    }

    /**
     * y = R(fp32(x·Wᵀ) + b): fp32 accumulation, bias in the fp32 epilogue, one rounding. The dot products run in the
     * shared tiled kernels, element for element the sums {@link #dot} describes: the exact mode's float64 sum of
     * float products is an fma chain (each product of two floats is exact in float64), and the sequential mode is
     * the running fp32 sum of FloatGemm. Nudges and the epilogue then go in row-major order, as before.
     */
    private float[] matmul(float[] x, int rows, int in, PanelSource w, int out, float[] b) {
        float[] y = new float[rows * out];
        if (sequentialSums) {
            FloatGemm.multiply(x, rows, in, w, out, y, par);
            slices(rows * out, 4096, (lo, hi) -> {
                for (int i = lo; i < hi; i++) y[i] = toDtype(b == null ? y[i] : y[i] + b[i % out]);
            });
            return y;
        }
        double[] s = new double[rows * out];
        Gemm.multiply(widen(x), rows, in, w, out, null, s, par);
        slices(rows * out, 4096, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double exact = s[i];
                float acc = nudged((float) exact, exact, in);
                if (b != null) acc += b[i % out];
                y[i] = toDtype(acc);
            }
        });
        return y;
    }

    /** fp32 result of a dot product: the exact sum rounded once to fp32 (or a running fp32 sum, see sequentialSums). */
    private float dot(float[] a, int ao, float[] b, int bo, int n) {
        if (sequentialSums) {
            float f = 0;
            for (int i = 0; i < n; i++) f += a[ao + i] * b[bo + i];
            return f;
        }
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) a[ao + i] * b[bo + i];
        return nudged((float) s, s, n);
    }

    private float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = toDtype((float) d[i]);   // WEIGHT_LOAD
        return f;
    }

    private float[] weights(TensorInfo t, long first, long count) {
        return toFloat(TensorStore.readDoubles(t, first, count));
    }

    // ---- RoPE ----

    /** cos and sin per [token][rotaryDim/2], computed in fp32 as HF does, then rounded to the dtype. */
    private float[][] cosSin(RopeSpec spec, int headDim, ForwardInput in) {
        int rot = modeldiff.numeric.Rope.rotaryDim(headDim, spec.partialRotaryFactor());
        RopeTable.Fp32 table = RopeTable.of(spec, rot, in.positionOffset() + in.length());
        float[] inv = table.invFreq();
        float scaling = (float) table.attentionScaling();
        if (fixes.ropeInvFreqLowp) for (int j = 0; j < inv.length; j++) inv[j] = toDtype(inv[j]);
        int T = in.length(), half = inv.length;
        float[] cos = new float[T * half], sin = new float[T * half];
        for (int t = 0; t < T; t++) {
            float pos = (float) in.position(t);
            for (int j = 0; j < half; j++) {
                float angle = fixes.ropeBf16Angles
                        ? Precision.BF16.round(pos) * Precision.BF16.round(inv[j])
                        : pos * inv[j];
                cos[t * half + j] = cosSinFp32 ? (float) Math.cos(angle) * scaling : toDtype((float) Math.cos(angle) * scaling);
                sin[t * half + j] = cosSinFp32 ? (float) Math.sin(angle) * scaling : toDtype((float) Math.sin(angle) * scaling);
            }
        }
        return new float[][]{cos, sin};
    }

    /** q·cos + rotate_half(q)·sin on the first rotary dims, each product and the sum rounded. */
    private void rope(float[] x, int T, int heads, int hd, float[][] cs) {
        int half = cs[0].length / T;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * hd;
                for (int j = 0; j < half; j++) {
                    float cos = cs[0][t * half + j], sin = cs[1][t * half + j];
                    float x1 = x[base + j], x2 = x[base + j + half];
                    if (ropePairs) {
                        x1 = x[base + 2 * j];
                        x2 = x[base + 2 * j + 1];
                    }
                    // OLMo 2: fp32 cos/sin promote the products and the sum to fp32; one cast back at the end.
                    float y1 = cosSinFp32 ? toDtype(x1 * cos + -x2 * sin) : toDtype(toDtype(x1 * cos) + toDtype(-x2 * sin));
                    float y2 = cosSinFp32 ? toDtype(x2 * cos + x1 * sin) : toDtype(toDtype(x2 * cos) + toDtype(x1 * sin));
                    if (ropePairs) {
                        x[base + 2 * j] = y1;
                        x[base + 2 * j + 1] = y2;
                    } else {
                        x[base + j] = y1;
                        x[base + j + half] = y2;
                    }
                }
            }
    }

    // ---- attention ----

    /** gpt-oss's sink logits per head, as stored (bf16) and rounded to the dtype; null without sinks or with attn.no_sinks. */
    private float[] sinks(Model model, int layer) {
        TensorInfo t = model.sinks(layer);
        return t == null || fixes.attnNoSinks ? null : weights(t, 0, model.config.numHeads);
    }

    private float[] attention(float[] q, float[] k, float[] v, int T, ModelConfig c, Family f, LayerSpec spec, float[] sinks) {
        return attention(q, k, v, T, new LowpMla.HeadDims(c.numHeads, c.numKvHeads, c.headDim, c.headDim, fixes.attnScale(spec)),
                c, f, spec, sinks);
    }

    /** Attention over heads of the given widths (MLA: qk_head_dim for q/k, v_head_dim for v) and score scale. */
    float[] attention(float[] q, float[] k, float[] v, int T, LowpMla.HeadDims dims, ModelConfig c, Family f, LayerSpec spec,
                      float[] sinks) {
        int heads = dims.heads(), kvHeads = dims.kvHeads(), hd = dims.qkDim(), vd = dims.vDim(), group = heads / kvHeads;
        int window = fixes.window(spec);
        int[] firstKeys = LowpLlama4.firstKeys(spec, T, runInput, fixes);   // Llama 4's chunks, or null
        double capD = fixes.attnSoftcap(c);
        float cap = (float) capD;
        boolean divide = f.scoreScaleByDivision && !fixes.attnScaleOverridden();
        float scaleMul = (float) dims.scale();
        float scaleDiv = toDtype((float) Math.sqrt(hd));
        float[] out = new float[T * heads * vd];
        int blocks = (T + 15) / 16;
        // One task per (head, block of 16 query rows): rows are independent, so any split gives the same result (and
        // with nudges the tasks run in order, head by head, as the draws expect).
        slices(heads * blocks, 1, (lo, hi) -> {
            float[] s = new float[T];
            for (int task = lo; task < hi; task++) {
                int h = task / blocks, kvh = h / group, b = task % blocks;
                for (int t = b * 16; t < Math.min(T, b * 16 + 16); t++) {
                    int first = window > 0 ? Math.max(0, t - window + 1) : 0;
                    if (firstKeys != null) first = Math.max(first, firstKeys[t]);
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = first; j <= t; j++) {
                        int qb = (t * heads + h) * hd, kb = (j * kvHeads + kvh) * hd;
                        float sc = toDtype(dot(q, qb, k, kb, hd));                             // ATTN_SCORES (matmul)
                        if (!divide) sc = toDtype(sc * scaleMul);                              // ATTN_SCORES (scale)
                        else {
                            // GPT-2: / sqrt(d) as a dtype tensor when scale_attn_weights, then / (layer + 1) when
                            // scale_attn_by_inverse_layer_idx, each a rounded op.
                            if (c.scaleAttnWeights) sc = toDtype(sc / scaleDiv);
                            if (c.scaleAttnByInverseLayer) sc = toDtype(sc / (float) (spec.index() + 1));
                        }
                        if (!Double.isNaN(capD)) sc = toDtype(toDtype((float) Math.tanh(toDtype(sc / cap))) * cap);   // ATTN_SOFTCAP
                        s[j] = sc;
                        max = Math.max(max, sc);
                    }
                    double sum = 0;
                    if (sinks != null) {
                        // gpt-oss: cat(scores, sink) − max in the dtype (SINK_SHIFT), then softmax(dtype=dtype): exp and
                        // sum in fp32 (the sink's term included), one rounding of each probability.
                        float mx = Math.max(max, sinks[h]);
                        for (int j = first; j <= t; j++) {
                            s[j] = (float) Math.exp(toDtype(s[j] - mx));
                            sum += s[j];
                        }
                        sum += (float) Math.exp(toDtype(sinks[h] - mx));
                    } else {
                        // softmax(dtype=float32).to(dtype): exp and sum in fp32, one rounding of each probability.
                        for (int j = first; j <= t; j++) {
                            float e = fixes.softmaxLowp ? toDtype((float) Math.exp(toDtype(s[j] - max))) : (float) Math.exp(s[j] - max);
                            s[j] = e;
                            sum += e;
                        }
                    }
                    float total = fixes.softmaxLowp ? toDtype((float) sum) : (float) sum;
                    int ob = (t * heads + h) * vd;
                    double[] acc = new double[vd];
                    for (int j = first; j <= t; j++) {
                        float pr = toDtype(s[j] / total);                                     // ATTN_PROBS
                        int vb = (j * kvHeads + kvh) * vd;
                        for (int d = 0; d < vd; d++) acc[d] += (double) pr * v[vb + d];
                    }
                    for (int d = 0; d < vd; d++) out[ob + d] = toDtype((float) acc[d]);        // ATTN_OUTPUT
                }
            }
        });
        return out;
    }

    // ---- MLP ----

    /** The activation kernel HF's ACT2FN picks for the config's name, with its own rounding. */
    private float[] activation(float[] g, ModelConfig c) {
        Activation act = fixes.activation(c);
        boolean pythonGeluNew = !fixes.activationOverridden() && "gelu_new".equals(c.activationName);
        float[] out = new float[g.length];
        slices(g.length, 4096, (lo, hi) -> {
            for (int i = lo; i < hi; i++) out[i] = activate(act, pythonGeluNew, g[i]);
        });
        return out;
    }

    private float activate(Activation act, boolean pythonGeluNew, float x) {
        return switch (act) {
            case GELU_TANH -> pythonGeluNew ? geluNewComposite(x) : toDtype(geluTanhKernel(x));
            case GELU_EXACT -> toDtype(x * 0.5f * (1f + (float) Erf.erf(x * (float) (1 / Math.sqrt(2)))));
            case SILU -> toDtype(x / (1f + (float) Math.exp(-x)));
            case RELU2 -> {
                float rl = Math.max(x, 0f);
                yield toDtype(rl * rl);
            }
            case RELU -> Math.max(x, 0f);
        };
    }

    /** PyTorch's fused tanh-GELU (F.gelu(approximate="tanh")): all in fp32. */
    private static float geluTanhKernel(float x) {
        final float kBeta = (float) (Math.sqrt(2) * (2 / Math.sqrt(Math.PI)) * 0.5);
        final float kKappa = 0.044715f;
        float cube = x * x * x;
        float inner = kBeta * (x + kKappa * cube);
        return 0.5f * x * (1f + (float) Math.tanh(inner));
    }

    /**
     * HF's NewGELUActivation is a Python formula: each torch op rounds to the dtype. torch.pow(x, 3.0) on a
     * reduced-precision tensor is evaluated as x·x·x with a rounding after each multiply.
     */
    private float geluNewComposite(float x) {
        float cube = toDtype(toDtype(x * x) * x);
        float inner = toDtype(x + toDtype(0.044715f * cube));
        float t = toDtype((float) Math.tanh(toDtype((float) Math.sqrt(2.0 / Math.PI) * inner)));
        return toDtype(toDtype(0.5f * x) * toDtype(1f + t));
    }

    private void residual(float[] x, float[] y) {
        slices(x.length, 4096, (lo, hi) -> {
            for (int i = lo; i < hi; i++) x[i] = toDtype(x[i] + y[i]);           // RESIDUAL
        });
    }

    private void softcap(float[] x, float cap) {
        for (int i = 0; i < x.length; i++) x[i] = toDtype(toDtype((float) Math.tanh(toDtype(x[i] / cap))) * cap);   // LOGITS
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
