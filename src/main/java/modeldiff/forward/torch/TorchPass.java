package modeldiff.forward.torch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.Recorder;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.LayerWeights;
import modeldiff.model.LinearRef;
import modeldiff.model.Model;
import modeldiff.model.MlaSpec;
import modeldiff.model.MlaWeights;
import modeldiff.model.MoeWeights;
import modeldiff.model.ModelConfig;
import modeldiff.model.NormRef;
import modeldiff.model.RopeSpec;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;
import modeldiff.numeric.Activation;
import modeldiff.numeric.Precision;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;

/**
 * The forward pass computed by PyTorch's own CPU kernels (libtorch 2.7.1 through DJL 0.36.0): every arithmetic step is
 * a torch op on a torch tensor (F.linear, matmul, softmax, layer_norm, tanh, erf, ...), written after HF transformers'
 * eager modeling code, explicit casts included: in fp16 the RMSNorm statistics, the attention softmax and the RoPE
 * cos/sin are computed in fp32 and cast, as HF does. From the model it takes only the description (which weights, which
 * window, RoPE inverse frequencies for the scaled rope types), never the arithmetic.
 *
 * <p>Memory: one NDManager per forward, a sub-manager per layer that owns the layer's weights and intermediates and is
 * closed when the layer ends (only the new residual stream is moved up); probes are copied to double[] before their
 * tensors are freed. Nothing native outlives {@link #run}.
 *
 * <p>bf16 is refused in Java (constructor and {@link TorchRuntime#checked}): DJL 0.36.0 aborts the JVM on any
 * bfloat16 tensor (docs/torch.md).
 */
public final class TorchPass implements ForwardPass {
    private final Precision precision;
    private final DataType dtype;
    private final Fixes fixes;
    private final int threads;
    /** MoE fixes torch cannot honour: none (kept so a future one has its place). */
    public static final java.util.Set<String> TORCH_REFUSED = java.util.Set.of();

    public TorchPass(Precision precision, Fixes fixes) {
        this(precision, fixes, TorchRuntime.defaultThreads());
    }

    /** @param threads torch intra-op threads while this pass runs (torch.set_num_threads) */
    public TorchPass(Precision precision, Fixes fixes, int threads) {
        if (precision == Precision.BF16)
            throw new BadInputException("torch:bf16 is not available: DJL 0.36.0 / PyTorch 2.7.1 aborts the JVM on any "
                    + "bfloat16 tensor (its JNI has no bfloat16 dtype mapping); use lowp:bf16, or torch:fp16 / torch:fp32 (docs/torch.md)");
        if (precision != Precision.FP32 && precision != Precision.FP16)
            throw new BadInputException("torch runs in fp32 or fp16, not " + precision.id());
        if (fixes.ropeBf16Angles)
            throw new BadInputException("torch pass cannot honour fix rope.bf16_angles: it needs bfloat16 tensors, which "
                    + "DJL 0.36.0 cannot create (docs/torch.md)");
        String moe = fixes.firstWithKey(TORCH_REFUSED);
        if (moe != null)
            throw new BadInputException("torch pass cannot honour fix " + moe + ": it does not implement gpt-oss (attention "
                    + "sinks, clamped experts) yet; use reference or lowp");
        if (threads < 1) throw new IllegalArgumentException("threads must be positive, got " + threads);
        this.precision = precision;
        this.dtype = precision == Precision.FP32 ? DataType.FLOAT32 : DataType.FLOAT16;
        this.fixes = fixes;
        this.threads = threads;
    }

    @Override
    public String name() {
        return precision == Precision.FP32 ? "torch:fp32" : "torch:fp16";
    }

    @Override
    public String dtype() {
        return precision.id();
    }

    public int threads() {
        return threads;
    }

    /**
     * What cuda does not implement yet, refused in one clear line before any work: Llama 4's attention, MLA
     * (DeepSeek-V3) and MoE families. torch runs all of them (MoE: TorchMoe), so it refuses no family.
     */
    public static void refuseUnsupported(String pass, Model model) {
        if (model.family.llama4Attention)
            throw new BadInputException(pass + " does not implement Llama 4's attention (chunks, NoPE temperature tuning, "
                    + "L2 q/k norm; the " + model.family + " family) yet; use reference, lowp:bf16|fp16|fp32 or torch:fp16|fp32");
        if (model.family.attention == Family.Attention.MLA)
            throw new BadInputException(pass + " does not implement multi-head latent attention (the " + model.family
                    + " family) yet; use reference, lowp:bf16|fp16|fp32 or torch:fp16|fp32");
        if (model.family.moe != null)
            throw new BadInputException(pass + " does not implement the " + model.family + " family "
                    + "(mixture of experts) yet; use reference, lowp:bf16|fp16|fp32 or torch:fp16|fp32");
    }

    // ---- the forward ----

    @Override
    public Trace run(Model model, ForwardInput input, ProbeLevel level) {
        TorchRuntime.require();
        TorchRuntime.setThreads(threads);
        ModelConfig c = model.config;
        Family f = model.family;
        int[] tokens = fixes.tokens(input.tokens(), c);
        ForwardInput in = input.withTokens(tokens);
        int T = in.length(), H = c.hiddenSize;
        Trace trace = new Trace("modeldiff " + name() + " (libtorch " + TorchRuntime.version() + " via DJL)"
                + (fixes.isEmpty() ? "" : " fixes=" + fixes.ids()), dtype(), "cpu", tokens, in.positionOffset());
        if (!fixes.isEmpty()) trace.putExtra("fixes", fixes.ids().toString());
        trace.putExtra("torch_threads", Integer.toString(threads));
        Recorder rec = Recorder.of(trace, in, level);

        try (NDManager fm = NDManager.newBaseManager()) {
            NDArray x = put(rec, fm, "embed", H, embed(fm, model, in));         // [T, H]
            for (int i = 0; i < c.numLayers; i++) {
                try (NDManager lm = fm.newSubManager()) {
                    x.attach(lm);           // the old residual stream dies with this layer
                    x = layer(lm, model, i, x, in, rec);
                    x.attach(fm);           // the new one survives it
                }
                x = put(rec, fm, "layers." + i, H, x);
            }
            try (NDManager lm = fm.newSubManager()) {
                x.attach(lm);
                NDArray fn = put(rec, lm, "final_norm", H, norm(lm, x, model.finalNorm(), H, f, c));
                NDArray lmHead = param(lm, model.lmHead(), c.vocabSize, H);
                NDArray logits = JniUtils.linear(pt(fn), pt(lmHead), null);     // [T, vocab]
                double cap = fixes.finalSoftcap(c);
                if (!Double.isNaN(cap)) logits = logits.div(cap).tanh().mul(cap);
                put(rec, lm, "logits", c.vocabSize, logits);
            }
        }
        return trace;
    }

    /**
     * Records a probe and returns what the pass continues with: {@code own}, or in a teacher-forced run the teacher's
     * value of the probe, shaped like {@code own} and cast to the dtype as the pass's own inputs are (float64 → fp32 →
     * dtype, exact for a teacher of the same dtype), created in {@code m}. Probes the level does not record cost nothing.
     */
    private NDArray put(Recorder rec, NDManager m, String probe, int width, NDArray own) {
        if (!rec.records(probe)) return own;
        double[] mine = doubles(own);
        double[] next = rec.put(probe, width, mine);
        return next == mine ? own : toDtype(m.create(next, own.getShape()));
    }

    private NDArray layer(NDManager m, Model model, int i, NDArray x, ForwardInput in, Recorder rec) {
        ModelConfig c = model.config;
        Family f = model.family;
        LayerWeights w = model.layer(i);
        LayerSpec spec = c.layers.get(i);
        int T = in.length(), H = c.hiddenSize;
        String p = "layers." + i + ".";

        NDArray a = put(rec, m, p + "attn_norm", H, w.attnNorm() == null ? x : norm(m, x, w.attnNorm(), H, f, c));   // [T, H]
        NDArray att = model.mla(i) != null                                     // DeepSeek-V3: q, k, v from the latents
                ? mlaAttention(m, model, i, a, in, rec)
                : denseAttention(m, model, i, a, in, rec);                       // [T, heads*v_hd]
        NDArray o = put(rec, m, p + "attn_out", H, linear(m, att, w.o()));     // [T, H]
        if (w.postAttnNorm() != null) o = norm(m, o, w.postAttnNorm(), H, f, c);
        boolean parallel = fixes.parallelResidual(c);      // GPT-NeoX: the MLP reads the block's input too
        NDArray blockIn = x;
        if (!parallel) x = x.add(o);                                             // residual + attn

        NDArray mIn = parallel ? blockIn : x;
        NDArray mn = put(rec, m, p + "mlp_norm", H, w.mlpNorm() == null ? mIn : norm(m, mIn, w.mlpNorm(), H, f, c));   // [T, H]
        MoeWeights experts = model.moe(i);
        NDArray mo;                                                              // [T, H]
        if (experts != null) {
            var ops = new TorchMoe.Ops((xx, ref) -> linear(m, xx, ref), g -> activation(g, c), this::toDtype, dtype, precision,
                    c.moe, fixes);
            mo = TorchMoe.run(m, mn, T, H, experts, ops, rec, p, (name, width, own) -> put(rec, m, name, width, own));
        } else {
            NDArray act;                                                         // [T, ff]
            if (f.mlp == Family.Mlp.GATED) {
                NDArray gate = linear(m, mn, fixes.swapGateUp ? w.up() : w.gate());
                NDArray up = linear(m, mn, fixes.swapGateUp ? w.gate() : w.up());
                act = activation(gate, c).mul(up);
            } else {
                act = activation(linear(m, mn, w.up()), c);
            }
            act = put(rec, m, p + "mlp_act", c.intermediateSize, act);
            mo = linear(m, act, w.down());
        }
        mo = put(rec, m, p + "mlp_out", H, mo);
        if (w.postMlpNorm() != null) mo = norm(m, mo, w.postMlpNorm(), H, f, c);
        if (parallel) return mo.add(o).add(x);                                   // mlp + attn + hidden_states
        return x.add(mo);                                                        // residual + mlp
    }

    /** q, k, v projections, q/k norm, RoPE and the eager attention of every non-MLA family; records q, k, v, attn. */
    private NDArray denseAttention(NDManager m, Model model, int i, NDArray a, ForwardInput in, Recorder rec) {
        ModelConfig c = model.config;
        Family f = model.family;
        LayerWeights w = model.layer(i);
        LayerSpec spec = c.layers.get(i);
        int T = in.length(), hd = c.headDim;
        String p = "layers." + i + ".";
        NDArray q = linear(m, a, w.q()).reshape(T, c.numHeads, hd);            // [T, heads, hd]
        NDArray k = linear(m, a, w.k()).reshape(T, c.numKvHeads, hd);          // [T, kv, hd]
        NDArray v = linear(m, a, w.v()).reshape(T, c.numKvHeads, hd);          // [T, kv, hd]
        if (f.qkNorm && !fixes.qkNormOff) {     // per head, or over the whole projection (OLMo 2, OLMoE)
            q = qkNorm(m, q, w.qNorm(), T, c.numHeads, hd, f, c);
            k = qkNorm(m, k, w.kNorm(), T, c.numKvHeads, hd, f, c);
        }
        RopeSpec layerRope = f.learnedPositions ? null : fixes.layerRope(spec, c);
        if (layerRope != null) {
            // Llama 4: a complex product with fp32 freqs_cis on pairs (2j, 2j+1), cast back once (rope.qk_interleaved flips the layout).
            // OLMo 2 (Family.ropeInFp32): cos/sin stay fp32, so q·cos + rotate_half(q)·sin runs in fp32 and is cast back once.
            boolean l4 = f.llama4Attention, pairs = fixes.qkInterleaved != l4, fp32 = l4 || f.ropeInFp32;
            NDArray[] cs = cosSin(m, layerRope, hd, in, fp32);                   // [T, 1, rot] each
            q = rope(q, cs, pairs, fp32);
            k = rope(k, cs, pairs, fp32);
        }
        if (spec.llama4() != null) {
            NDArray[] qk = llama4AfterRope(m, q, k, spec.llama4(), in, fixes.eps(c));
            q = qk[0];
            k = qk[1];
        }
        q = put(rec, m, p + "q", c.qDim(), q);
        k = put(rec, m, p + "k", c.kvDim(), k);
        v = put(rec, m, p + "v", c.kvDim(), v);
        var dims = new AttnDims(c.numHeads, c.numKvHeads, hd, hd, fixes.attnScale(spec));
        return put(rec, m, p + "attn", c.qDim(),
                attention(m, q, k, v, T, dims, c, f, spec, sinks(m, model, i), firstKeys(spec, in)));   // [T, heads*hd]
    }

    /**
     * Llama4TextAttention after RoPE: on RoPE layers the weightless L2 norm of q and k over each head,
     * (x.float() · rsqrt(mean(x²) + eps)).type_as(x) (not with qk_norm.off); on NoPE layers q times the temperature
     * log1p(floor((cache_position.float() + 1.0) / floor_scale)) · attn_scale + 1.0, an fp32 product cast back once
     * (not with attn.no_temperature_tuning). Positions are absolute, so a run at an offset tunes as HF's cached run.
     */
    private NDArray[] llama4AfterRope(NDManager m, NDArray q, NDArray k, LayerSpec.Llama4 l, ForwardInput in, double eps) {
        if (l.l2Norm() && !fixes.qkNormOff) {
            q = l2Norm(m, q, eps);
            k = l2Norm(m, k, eps);
        }
        if (l.tempScale() > 0 && !fixes.attnNoTemperatureTuning) {
            int T = in.length();
            NDArray pos = m.arange((int) in.positionOffset(), (int) (in.positionOffset() + T), 1, DataType.INT64)
                    .toType(DataType.FLOAT32, false);
            // log1p(n) as log(1 + n): n is a whole number, so 1 + n is exact in fp32
            NDArray scales = pos.add(1.0).div(l.floorScale()).floor().add(1.0).log().mul(l.tempScale()).add(1.0);
            q = cast(cast(q, DataType.FLOAT32).mul(scales.reshape(T, 1, 1)), dtype);
        }
        return new NDArray[]{q, k};
    }

    /** Llama4TextL2Norm over the last axis: x.float() · rsqrt(x.pow(2).mean(-1, keepdim=True) + eps), type_as(x). */
    private NDArray l2Norm(NDManager m, NDArray x, double eps) {
        NDArray xf = cast(x, DataType.FLOAT32);
        NDArray variance = xf.square().mean(new int[]{-1}, true);
        return cast(xf.mul(reciprocal(m, variance.add(eps).sqrt())), dtype);
    }

    /**
     * Llama 4's chunked mask: per query, its first visible key (the first of its chunk of absolute positions, pos //
     * chunk equal); null when the layer is not chunked or with attn.no_chunking.
     */
    private int[] firstKeys(LayerSpec spec, ForwardInput in) {
        if (spec.llama4() == null || spec.llama4().chunk() <= 0 || fixes.attnNoChunking) return null;
        long chunk = spec.llama4().chunk(), p0 = in.position(0);
        int[] first = new int[in.length()];
        for (int t = 0; t < first.length; t++) {
            long p = in.position(t);
            first[t] = (int) Math.max(0, (p / chunk) * chunk - p0);
        }
        return first;
    }

    /**
     * DeepSeek-V3's multi-head latent attention (DeepseekV3Attention.forward): q = q_b(rms(q_a(x))) or q_proj(x);
     * kv_a_proj_with_mqa splits into the latent (normed, expanded by kv_b_proj into k_nope and v per head) and one
     * k_pe head shared by all; RoPE on q's rope part and on k_pe (rope_interleave: de-interleaved first, as
     * apply_rotary_pos_emb_interleave's view/transpose/reshape), then q = cat(q_nope, q_rot), k = cat(k_nope, k_pe
     * expanded) and the eager attention with the scale qk_head_dim^-0.5 · mscale². Probes as the reference records them.
     */
    private NDArray mlaAttention(NDManager m, Model model, int i, NDArray a, ForwardInput in, Recorder rec) {
        ModelConfig c = model.config;
        MlaSpec s = c.mla;
        MlaWeights w = model.mla(i);
        LayerSpec spec = c.layers.get(i);
        int T = in.length(), heads = c.numHeads, nope = s.qkNopeHeadDim(), rope = s.qkRopeHeadDim();
        String p = "layers." + i + ".";
        NDArray qIn = s.qLora() ? latentNorm(m, linear(m, a, w.qA()), w.qANorm(), s.qLoraRank(), model.family) : a;
        NDArray qNope = linear(m, qIn, w.qNope()).reshape(T, heads, nope);
        NDArray qRot = linear(m, qIn, w.qRope()).reshape(T, heads, rope);
        NDArray latent = latentNorm(m, linear(m, a, w.kvA()), w.kvANorm(), s.kvLoraRank(), model.family);   // [T, kv_lora]
        NDArray kPe = linear(m, a, w.kPe()).reshape(T, 1, rope);                 // one head, shared
        NDArray kNope = linear(m, latent, w.kNope()).reshape(T, heads, nope);
        NDArray v = linear(m, latent, w.v()).reshape(T, heads, s.vHeadDim());
        RopeSpec r = fixes.layerRope(spec, c);
        if (r != null) {
            NDArray[] cs = cosSin(m, r, rope, in);                                // [T, 1, rope] each
            if (s.ropeInterleave()) {
                qRot = deinterleave(qRot);
                kPe = deinterleave(kPe);
            }
            qRot = ropeHalves(qRot, cs);
            kPe = ropeHalves(kPe, cs);
        }
        NDArray q = put(rec, m, p + "q", s.qkDim(heads), NDArrays.concat(new NDList(qNope, qRot), -1));
        NDArray k = put(rec, m, p + "k", s.qkDim(heads), NDArrays.concat(new NDList(kNope, kPe.broadcast(T, heads, rope)), -1));
        v = put(rec, m, p + "v", s.vDim(heads), v);
        var dims = new AttnDims(heads, heads, s.qkHeadDim(), s.vHeadDim(), fixes.mlaScale(spec, c));
        return put(rec, m, p + "attn", s.vDim(heads), attention(m, q, k, v, T, dims, c, model.family, spec, null, null));
    }

    /** apply_rotary_pos_emb_interleave's view(.., d/2, 2).transpose(-1, -2).reshape: pairs (2j, 2j+1) to (j, j + d/2). */
    private static NDArray deinterleave(NDArray x) {
        Shape sh = x.getShape();
        long T = sh.get(0), heads = sh.get(1), d = sh.get(2);
        return x.reshape(T, heads, d / 2, 2).transpose(0, 1, 3, 2).reshape(T, heads, d);
    }

    // ---- embedding ----

    /**
     * embed_tokens(ids) in the dtype; Gemma multiplies by normalizer = tensor(sqrt(H), dtype) (the constant rounded
     * to the dtype, or the fp32 variant with embed.scale_fp32); GPT-2 adds wpe(positions).
     */
    private NDArray embed(NDManager m, Model model, ForwardInput in) {
        ModelConfig c = model.config;
        int H = c.hiddenSize, T = in.length();
        double[] rows = new double[T * H];
        for (int t = 0; t < T; t++) {
            int id = in.tokens()[t];
            if (id < 0 || id >= c.vocabSize)
                throw new BadInputException("token id " + id + " at index " + t + " is outside the vocabulary [0, " + c.vocabSize + ")");
            System.arraycopy(TensorStore.readDoubles(model.embedding(), (long) id * H, H), 0, rows, t * H, H);
        }
        NDArray x = toDtype(m.create(rows, new Shape(T, H)));
        double scale = fixes.embedScale(c);
        if (scale != 1.0) {
            if (fixes.embedScaleFp32) {
                x = cast(cast(x, DataType.FLOAT32).mul(scale), dtype);
            } else {
                NDArray normalizer = cast(m.create(scale), dtype);          // torch.tensor(sqrt(H), dtype=dtype)
                x = x.mul(normalizer);
            }
        }
        TensorInfo wpe = model.positionEmbedding();
        if (wpe != null) {
            double[] pos = new double[T * H];
            for (int t = 0; t < T; t++) {
                long position = in.position(t);
                if (position >= wpe.shape()[0])
                    throw new BadInputException("position " + position + " is beyond the model's " + wpe.shape()[0] + " learned positions");
                System.arraycopy(TensorStore.readDoubles(wpe, position * H, H), 0, pos, t * H, H);
            }
            x = x.add(toDtype(m.create(pos, new Shape(T, H))));
        }
        return x;
    }

    // ---- norms ----

    /** The family's norm over the last axis (width dim) of x, any leading shape. */
    private NDArray norm(NDManager m, NDArray x, NormRef ref, int dim, Family f, ModelConfig c) {
        double eps = fixes.eps(c);
        boolean unit = fixes.unitOffset(f.norm);
        NDArray w = param(m, ref.weight(), dim);
        if (f.norm.centered()) {
            // nn.LayerNorm / Nemotron's LayerNorm1P: F.layer_norm(x, shape, weight (+ 1 in the dtype), bias, eps).
            NDArray gamma = unit ? w.add(1) : w;
            NDArray beta = ref.bias() == null ? null : param(m, ref.bias(), dim);
            return JniUtils.layerNorm(pt(x), new Shape(dim), pt(gamma), beta == null ? null : pt(beta), eps);
        }
        return rms(m, x, w, eps, unit, f);
    }

    /**
     * MLA's q_a_layernorm / kv_a_layernorm: the family's RMSNorm with DeepseekV3RMSNorm's class-default eps 1e-6 (HF
     * does not pass rms_norm_eps to them; norm.eps=V replaces it as it does every norm's).
     */
    private NDArray latentNorm(NDManager m, NDArray x, NormRef ref, int dim, Family f) {
        return rms(m, x, param(m, ref.weight(), dim), fixes.latentNormEps(), false, f);
    }

    /** RMSNorm: x.float(); x * rsqrt(x.pow(2).mean(-1, keepdim=True) + eps), then the family's weight and cast order. */
    private NDArray rms(NDManager m, NDArray x, NDArray w, double eps, boolean unit, Family f) {
        NDArray xf = cast(x, DataType.FLOAT32);
        NDArray variance = xf.square().mean(new int[]{-1}, true);
        NDArray xhat = xf.mul(reciprocal(m, variance.add(eps).sqrt()));         // torch.rsqrt on CPU is 1 / sqrt
        boolean weightThenCast = f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !fixes.normCastBeforeWeight;
        if (weightThenCast) {
            // Gemma: (x̂ * (1.0 + weight.float())).type_as(x)
            NDArray wf = cast(w, DataType.FLOAT32);
            return cast(xhat.mul(unit ? wf.add(1.0) : wf), dtype);
        }
        // Llama: weight * x̂.to(input_dtype); a (1 + w) norm written this way adds the 1 in the dtype.
        return (unit ? w.add(1) : w).mul(cast(xhat, dtype));
    }

    /**
     * q/k norm [T, heads, hd]: per head (weight of head_dim), over the whole projection (OLMo 2, weight of
     * heads·head_dim), or with qk_norm.per_head a whole-projection weight applied after a per-head RMS.
     */
    private NDArray qkNorm(NDManager m, NDArray x, NormRef ref, int T, int heads, int hd, Family f, ModelConfig c) {
        if (ref.weight().elementCount() == hd) return norm(m, x, ref, hd, f, c);
        if (!fixes.qkNormPerHead) return norm(m, x.reshape(T, (long) heads * hd), ref, heads * hd, f, c).reshape(T, heads, hd);
        NDArray xf = cast(x, DataType.FLOAT32);
        NDArray variance = xf.square().mean(new int[]{-1}, true);
        NDArray xhat = xf.mul(reciprocal(m, variance.add(fixes.eps(c)).sqrt()));
        NDArray wf = cast(param(m, ref.weight(), heads * hd), DataType.FLOAT32).reshape(heads, hd);
        return cast(xhat.mul(wf), dtype);   // OLMo 2's (weight * x̂).to(dtype)
    }

    // ---- linear ----

    /** F.linear(x, W, b) with W [out, in] in the dtype. */
    private NDArray linear(NDManager m, NDArray x, LinearRef ref) {
        NDArray w = fromFloats(m.create(ref.loadWeightFloats(), new Shape(ref.out(), ref.in())));
        NDArray b = ref.hasBias() ? fromFloats(m.create(ref.loadBiasFloats(), new Shape(ref.out()))) : null;
        return JniUtils.linear(pt(x), pt(w), b == null ? null : pt(b));
    }

    // ---- RoPE ----

    /**
     * HF's rotary embedding: inv_freq in fp32, freqs = inv_freq ⊗ positions in fp32, emb = cat(freqs, freqs),
     * cos = emb.cos() * attention_scaling, then .to(dtype). Shapes [T, 1, rotaryDim].
     */
    private NDArray[] cosSin(NDManager m, RopeSpec spec, int headDim, ForwardInput in) {
        return cosSin(m, spec, headDim, in, false);
    }

    /** @param fp32 keep cos/sin in fp32 (Llama 4's freqs_cis = polar(1, freqs) · attention_scaling, never cast) */
    private NDArray[] cosSin(NDManager m, RopeSpec spec, int headDim, ForwardInput in, boolean fp32) {
        int rot = Rope.rotaryDim(headDim, spec.partialRotaryFactor());
        int T = in.length();
        long seqLen = in.positionOffset() + T;
        NDArray inv = invFreq(m, spec, rot, seqLen);                             // [rot/2] fp32
        if (fixes.ropeInvFreqLowp) inv = cast(cast(inv, dtype), DataType.FLOAT32);
        if (seqLen > Integer.MAX_VALUE) throw new BadInputException("position " + (seqLen - 1) + " is too large for torch's RoPE here");
        NDArray pos = m.arange((int) in.positionOffset(), (int) seqLen, 1, DataType.INT64).toType(DataType.FLOAT32, false);
        NDArray freqs = inv.reshape(rot / 2, 1).matMul(pos.reshape(1, T)).transpose();   // [T, rot/2]
        NDArray emb = NDArrays.concat(new NDList(freqs, freqs), -1);           // [T, rot]
        double scaling = attentionScaling(spec);
        DataType to = fp32 ? DataType.FLOAT32 : dtype;
        NDArray cos = cast(emb.cos().mul(scaling), to).reshape(T, 1, rot);
        NDArray sin = cast(emb.sin().mul(scaling), to).reshape(T, 1, rot);
        return new NDArray[]{cos, sin};
    }

    /**
     * inv_freq as HF computes it at init, in fp32 torch ops: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), then
     * linear's division by the factor or llama3's wavelength blend. Dynamic, yarn and longrope take the described
     * float64 frequencies rounded to fp32 (no fixture uses them).
     */
    private NDArray invFreq(NDManager m, RopeSpec spec, int rot, long seqLen) {
        NDArray exponent = m.arange(0, rot, 2, DataType.INT64).toType(DataType.FLOAT32, false).div(rot);
        NDArray base = m.full(exponent.getShape(), (float) spec.theta(), DataType.FLOAT32);
        switch (spec.type()) {
            case "dynamic" -> {
                // base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)), seq_len an int64 tensor
                long len = Math.max(seqLen, spec.maxPositionEmbeddings());
                NDArray t = m.create(new long[]{len}).toType(DataType.FLOAT32, false).mul(spec.factor())
                        .div(spec.maxPositionEmbeddings()).sub(spec.factor() - 1).pow(rot / (rot - 2.0)).mul(spec.theta());
                return reciprocal(m, t.pow(exponent));
            }
            case "yarn" -> {
                return yarn(m, spec, rot, base.pow(exponent));
            }
            case "longrope" -> {
                double[] ext = seqLen > spec.originalMax() ? spec.longFactor() : spec.shortFactor();
                NDArray e = m.create(ext).toType(DataType.FLOAT32, false);
                return reciprocal(m, e.mul(base.pow(exponent)));
            }
            default -> {
                NDArray inv = reciprocal(m, base.pow(exponent));
                if (spec.type().equals("linear")) inv = inv.div(spec.factor());
                if (spec.type().equals("llama3")) inv = llama3(m, inv, spec);
                return inv;
            }
        }
    }

    private static double mscale(double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
    }

    /** The Python-float factor HF multiplies cos/sin by: yarn's mscale ratio, longrope's sqrt(1 + ln f / ln L). */
    private static double attentionScaling(RopeSpec s) {
        if (!s.type().equals("yarn") && !s.type().equals("longrope")) return 1.0;
        if (!Double.isNaN(s.attentionFactor())) return s.attentionFactor();
        double f = s.effectiveFactor();
        if (s.type().equals("longrope")) return f <= 1 ? 1.0 : Math.sqrt(1 + Math.log(f) / Math.log(s.originalMax()));
        boolean both = !Double.isNaN(s.mscale()) && !Double.isNaN(s.mscaleAllDim()) && s.mscale() != 0 && s.mscaleAllDim() != 0;
        return both ? mscale(f, s.mscale()) / mscale(f, s.mscaleAllDim()) : mscale(f, 1);
    }

    /** HF's _compute_yarn_parameters: correction range in Python floats, the blend in fp32 tensor ops. */
    private NDArray yarn(NDManager m, RopeSpec s, int rot, NDArray posFreqs) {
        double base = s.theta(), factor = s.effectiveFactor();
        double fast = Double.isNaN(s.betaFast()) || s.betaFast() == 0 ? 32 : s.betaFast();
        double slow = Double.isNaN(s.betaSlow()) || s.betaSlow() == 0 ? 1 : s.betaSlow();
        int om = s.originalMax();
        double low = rot * Math.log(om / (fast * 2 * Math.PI)) / (2 * Math.log(base));
        double high = rot * Math.log(om / (slow * 2 * Math.PI)) / (2 * Math.log(base));
        if (s.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, rot - 1);
        if (low == high) high += 0.001;
        NDArray extrapolation = reciprocal(m, posFreqs);
        NDArray interpolation = reciprocal(m, posFreqs.mul(factor));
        NDArray ramp = m.arange(0, rot / 2, 1, DataType.INT64).toType(DataType.FLOAT32, false).sub(low).div(high - low).clip(0, 1);
        NDArray extrapolationFactor = ramp.neg().add(1);
        return interpolation.mul(extrapolationFactor.neg().add(1)).add(extrapolation.mul(extrapolationFactor));
    }

    /** HF's _compute_llama3_parameters, op for op (Python's scalar / tensor is reciprocal(tensor) * scalar). */
    private NDArray llama3(NDManager m, NDArray inv, RopeSpec s) {
        double factor = s.factor(), low = s.lowFreqFactor(), high = s.highFreqFactor();
        double old = s.originalMaxPositions();
        double lowWavelen = old / low, highWavelen = old / high;
        NDArray wavelen = reciprocal(m, inv).mul(2 * Math.PI);
        NDArray scaled = NDArrays.where(wavelen.gt(lowWavelen), inv.div(factor), inv);
        NDArray smooth = reciprocal(m, wavelen).mul(old).sub(low).div(high - low);
        NDArray smoothed = smooth.neg().add(1).mul(scaled).div(factor).add(smooth.mul(scaled));
        NDArray medium = wavelen.lt(highWavelen).logicalNot().logicalAnd(wavelen.gt(lowWavelen).logicalNot());
        return NDArrays.where(medium, smoothed, scaled);
    }

    /**
     * q·cos + rotate_half(q)·sin on the first rotaryDim dims of each head, the rest passed through. x [T, heads, hd].
     *
     * @param pairs rotate pairs (2j, 2j+1) (GPT-J / Meta layout) instead of halves
     * @param fp32  Llama 4: x.float() times fp32 cos/sin, the result cast back to the dtype once
     */
    private NDArray rope(NDArray x, NDArray[] cs, boolean pairs, boolean fp32) {
        if (fp32 && dtype != DataType.FLOAT32) return cast(rope(cast(x, DataType.FLOAT32), cs, pairs, false), dtype);
        NDArray cos = cs[0], sin = cs[1];
        long rot = cos.getShape().get(2), hd = x.getShape().get(2);
        NDArray xr = rot == hd ? x : x.get(":, :, 0:" + rot);
        NDArray out;
        if (pairs) {
            // GPT-J / Meta layout: pairs (2j, 2j+1) share frequency j.
            long T = x.getShape().get(0), heads = x.getShape().get(1), half = rot / 2;
            NDArray pr = xr.reshape(T, heads, half, 2);
            NDArray x1 = pr.get(":, :, :, 0"), x2 = pr.get(":, :, :, 1");
            NDArray c = cos.get(":, :, 0:" + half), s = sin.get(":, :, 0:" + half);
            NDArray y1 = x1.mul(c).sub(x2.mul(s));
            NDArray y2 = x2.mul(c).add(x1.mul(s));
            out = NDArrays.stack(new NDList(y1, y2), -1).reshape(T, heads, rot);
        } else {
            out = ropeHalves(xr, cs);
        }
        return rot == hd ? out : NDArrays.concat(new NDList(out, x.get(":, :, " + rot + ":")), -1);
    }

    /** apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, x [T, heads, rot] in the halves layout, cos/sin [T, 1, rot]. */
    private static NDArray ropeHalves(NDArray x, NDArray[] cs) {
        long rot = x.getShape().get(2), half = rot / 2;
        NDArray x1 = x.get(":, :, 0:" + half), x2 = x.get(":, :, " + half + ":" + rot);
        NDArray rotated = NDArrays.concat(new NDList(x2.neg(), x1), -1);
        return x.mul(cs[0]).add(rotated.mul(cs[1]));
    }

    // ---- attention ----

    /**
     * HF's eager attention: repeat_kv, scores = q·kᵀ * scaling (GPT-2: / tensor(sqrt(hd), dtype), then / (layer+1)),
     * Gemma 2's soft-cap (s / cap, tanh, * cap), the causal (sliding) mask, softmax(dim=-1, dtype=float32).to(dtype)
     * (GPT-2: softmax in the dtype), then probs·V. q [T, heads, hd], k/v [T, kv, hd] → [T, heads*hd].
     */
    /** gpt-oss's sink logits per head in the dtype, or null (no sinks, or attn.no_sinks). */
    private NDArray sinks(NDManager m, Model model, int layer) {
        TensorInfo t = model.sinks(layer);
        if (t == null || fixes.attnNoSinks) return null;
        return fromFloats(m.create(TensorStore.readFloats(t, 0, model.config.numHeads), new Shape(model.config.numHeads, 1, 1)));
    }

    private NDArray attention(NDManager m, NDArray q, NDArray k, NDArray v, int T, AttnDims d, ModelConfig c, Family f,
                              LayerSpec spec, NDArray sinks, int[] firstKeys) {
        int heads = d.heads(), kvHeads = d.kvHeads(), hd = d.qkDim(), group = heads / kvHeads;
        NDArray qh = q.transpose(1, 0, 2);                                       // [heads, T, hd]
        NDArray kh = repeatKv(k.transpose(1, 0, 2), kvHeads, group, T, hd);     // [heads, T, hd]
        NDArray vh = repeatKv(v.transpose(1, 0, 2), kvHeads, group, T, d.vDim());
        NDArray scores = qh.matMul(kh.transpose(0, 2, 1));                      // [heads, T, T]
        boolean gpt2Division = f.scoreScaleByDivision && !fixes.attnScaleOverridden();
        if (gpt2Division) {
            if (c.raw.path("scale_attn_weights").asBoolean(true))
                scores = scores.div(cast(m.create(Math.sqrt(hd)), dtype));      // torch.full([], hd ** 0.5, dtype)
            if (c.raw.path("scale_attn_by_inverse_layer_idx").asBoolean(false))
                scores = scores.div((double) (spec.index() + 1));
        } else {
            scores = scores.mul(d.scale());
        }
        double cap = fixes.attnSoftcap(c);
        if (!Double.isNaN(cap)) scores = scores.div(cap).tanh().mul(cap);
        scores = scores.add(causalMask(m, T, fixes.window(spec), firstKeys));
        NDArray probs;
        if (sinks != null) {
            // gpt-oss: cat(scores, sink) − max in the dtype, softmax(dtype=dtype) (fp32 inside), the sink column dropped
            NDArray comb = scores.concat(sinks.broadcast(c.numHeads, T, 1), 2);
            comb = comb.sub(comb.max(new int[]{2}, true));
            probs = cast(cast(comb, DataType.FLOAT32).softmax(-1), dtype).get(new NDIndex(":, :, 0:" + T));
        } else if (f.scoreScaleByDivision || fixes.softmaxLowp) {
            probs = scores.softmax(-1);                                          // GPT-2: softmax in the dtype
        } else {
            probs = cast(cast(scores, DataType.FLOAT32).softmax(-1), dtype);     // softmax(dtype=float32).to(dtype)
        }
        NDArray out = probs.matMul(vh);                                          // [heads, T, v_hd]
        return out.transpose(1, 0, 2).reshape(T, (long) heads * d.vDim());
    }

    /** Heads of q, of k/v, the widths of a q/k and of a v head, and the Python-float score scale. */
    private record AttnDims(int heads, int kvHeads, int qkDim, int vDim, double scale) {
    }

    /** repeat_kv: [kv, T, hd] → [kv * group, T, hd], each KV head repeated group times. */
    private static NDArray repeatKv(NDArray x, int kvHeads, int group, int T, int hd) {
        if (group == 1) return x;
        return x.reshape(kvHeads, 1, T, hd).broadcast(kvHeads, group, T, hd).reshape((long) kvHeads * group, T, hd);
    }

    /**
     * 0 where query t sees key s (s ≤ t, t − s < window when sliding, s ≥ firstKeys[t] when chunked), −inf elsewhere;
     * in the dtype.
     */
    private NDArray causalMask(NDManager m, int T, int window, int[] firstKeys) {
        float[] mask = new float[T * T];
        for (int t = 0; t < T; t++)
            for (int s = 0; s < T; s++) {
                boolean visible = s <= t && (window <= 0 || t - s < window) && (firstKeys == null || s >= firstKeys[t]);
                mask[t * T + s] = visible ? 0f : Float.NEGATIVE_INFINITY;
            }
        return cast(m.create(mask, new Shape(T, T)), dtype);
    }

    // ---- MLP activations ----

    /**
     * ACT2FN's kernel for the config's activation: F.silu and F.gelu(approximate="tanh") are fused kernels computing
     * in fp32 and rounding once, written here as their fp32 formula then one cast; gelu_new is HF's Python formula
     * (each op rounds to the dtype); exact GELU is torch's gelu (erf) kernel; relu2 is relu then square.
     */
    private NDArray activation(NDArray g, ModelConfig c) {
        Activation act = fixes.activation(c);
        boolean pythonGeluNew = !fixes.activationOverridden() && "gelu_new".equals(c.activationName);
        switch (act) {
            case SILU -> {
                NDArray gf = cast(g, DataType.FLOAT32);
                return cast(gf.div(gf.neg().exp().add(1)), dtype);              // x / (1 + exp(-x))
            }
            case GELU_TANH -> {
                if (pythonGeluNew) {
                    // 0.5 * x * (1.0 + tanh(sqrt(2/pi) * (x + 0.044715 * pow(x, 3.0))))
                    NDArray inner = g.add(g.pow(3.0).mul(0.044715)).mul(Math.sqrt(2.0 / Math.PI));
                    return g.mul(0.5).mul(inner.tanh().add(1.0));
                }
                NDArray gf = cast(g, DataType.FLOAT32);
                double kBeta = Math.sqrt(2) * (2 / Math.sqrt(Math.PI)) * 0.5;
                NDArray inner = gf.add(gf.mul(gf).mul(gf).mul(0.044715)).mul(kBeta);
                return cast(gf.mul(0.5).mul(inner.tanh().add(1)), dtype);
            }
            case GELU_EXACT -> {
                return JniUtils.gelu(pt(g));
            }
            case RELU2 -> {
                return JniUtils.relu(pt(g)).square();
            }
            case RELU -> {
                return JniUtils.relu(pt(g));
            }
            default -> throw new IllegalStateException(act.toString());
        }
    }

    // ---- tensors in and out ----

    /** A stored parameter (whole tensor, given shape) in the dtype. */
    private NDArray param(NDManager m, TensorInfo t, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        return fromFloats(m.create(TensorStore.readFloats(t, 0, n), new Shape(shape)));
    }

    /**
     * Weights read straight to fp32 (TensorStore.readFloats: the same values toDtype's float64 → fp32 cast gives,
     * without a float64 copy of every matrix on the heap and in native memory), then cast to the dtype.
     */
    private NDArray fromFloats(NDArray f32) {
        return dtype == DataType.FLOAT32 ? f32 : cast(f32, dtype);
    }

    /** from_pretrained(dtype=...): float64-widened stored values cast by torch (via their exact fp32 value). */
    private NDArray toDtype(NDArray f64) {
        NDArray f32 = f64.toType(DataType.FLOAT32, false);
        return cast(f32, dtype);
    }

    private static NDArray cast(NDArray x, DataType t) {
        return x.toType(TorchRuntime.checked(t), false);
    }

    /** 1 / x as a true division (torch's CPU reciprocal and rsqrt compute exactly this). */
    private static NDArray reciprocal(NDManager m, NDArray x) {
        NDArray one = m.ones(x.getShape(), x.getDataType());
        return one.div(x);
    }

    /** A probe: the tensor widened exactly to float64 and copied to the Java heap, flattened row-major. */
    private static double[] doubles(NDArray x) {
        try (NDArray d = x.toType(DataType.FLOAT64, true)) {
            return d.toDoubleArray();
        }
    }

    private static PtNDArray pt(NDArray x) {
        return (PtNDArray) x;
    }

    // ---- timing hook ----

    /**
     * Runs {@code n} forwards of {@code pass} back to back (after one untimed warm-up) and returns the wall-clock
     * seconds they took. For benchmarks; tests never assert on it.
     */
    public static double timeForwards(ForwardPass pass, Model model, ForwardInput input, ProbeLevel level, int n) {
        if (n < 1) throw new IllegalArgumentException("n must be positive");
        pass.run(model, input, level);
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) pass.run(model, input, level);
        return (System.nanoTime() - t0) / 1e9;
    }
}
