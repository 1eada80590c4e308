package modeldiff.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model release as published: its folder, normalised config, family and tensors. Opening validates that every
 * tensor the family needs exists with the shape the config implies, and reads no tensor data.
 */
public final class Model {
    public final Path dir;
    public final ModelConfig config;
    public final Family family;
    public final TensorStore store;
    private final String prefix;       // "model." / "transformer." or "" when saved from the bare base model
    private final List<LayerWeights> layers;
    /** Per layer: its experts, or null where the layer runs a dense MLP. */
    private final List<MoeWeights> moeLayers;
    /** Per layer: its MLA attention weights, or null for q/k/v-projection attention. */
    private final List<MlaWeights> mlaLayers;
    private final TensorInfo embedding, positionEmbedding, lmHead;
    private final NormRef finalNorm;
    private final Set<String> used = new LinkedHashSet<>();
    /** Null when opening strictly; else {@link #inspect} collects each tensor's problem here instead of throwing. */
    private final Map<String, String> problems;

    private Model(Path dir, ModelConfig config, TensorStore store) {
        this(dir, config, store, null);
    }

    private Model(Path dir, ModelConfig config, TensorStore store, Map<String, String> problems) {
        this.problems = problems;
        this.dir = dir;
        this.config = config;
        this.family = config.family;
        this.store = store;
        String base = switch (family.layout) {
            case GPT2 -> "transformer.";
            case NEOX -> "gpt_neox.";
            default -> "model.";
        };
        String embedName = switch (family.layout) {
            case GPT2 -> "wte.weight";
            case NEOX -> "embed_in.weight";
            default -> "embed_tokens.weight";
        };
        prefix = store.has(base + embedName) || !store.has(embedName) ? base : "";
        int h = config.hiddenSize;
        embedding = tensor(embedName, config.vocabSize, h);
        positionEmbedding = family.learnedPositions ? tensor("wpe.weight", config.maxPositionEmbeddings, h) : null;
        finalNorm = norm(switch (family.layout) {
            case GPT2 -> "ln_f";
            case NEOX -> "final_layer_norm";
            default -> "norm";
        }, h);
        String headName = family.layout == Family.Layout.NEOX ? "embed_out.weight" : "lm_head.weight";
        if (store.has(headName)) {
            lmHead = exact(headName, config.vocabSize, h);
        } else if (config.tieWordEmbeddings) {
            lmHead = embedding;
        } else if (problems != null) {
            problems.put(headName, "missing and tie_word_embeddings is false");
            lmHead = embedding;
        } else {
            throw BadInputException.at(dir, "tensor '" + headName + "'", "missing and tie_word_embeddings is false");
        }
        List<MlaWeights> as = new ArrayList<>();
        for (int i = 0; i < config.numLayers; i++) as.add(mlaLayer(i));
        mlaLayers = Collections.unmodifiableList(as);
        List<LayerWeights> ls = new ArrayList<>();
        for (int i = 0; i < config.numLayers; i++) ls.add(layer(i));
        layers = Collections.unmodifiableList(ls);
        List<MoeWeights> ms = new ArrayList<>();
        for (int i = 0; i < config.numLayers; i++) {
            ms.add(moeLayer(i));
            sinks(i);   // validated (and counted as used) when the model opens
        }
        moeLayers = Collections.unmodifiableList(ms);
    }

    public static Model open(Path dir) {
        if (!Files.isDirectory(dir)) throw BadInputException.at(dir, "model folder", "not a directory");
        ModelConfig config = ModelConfig.load(dir);
        return new Model(dir, config, TensorStore.open(dir));
    }

    public LayerWeights layer(int i) {
        if (layers != null) return layers.get(i);
        ModelConfig c = config;
        int h = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize;
        String p = (family.layout == Family.Layout.GPT2 ? "h." : "layers.") + i + ".";
        switch (family.layout) {
            case GPT2: {
                TensorInfo cAttn = tensor(p + "attn.c_attn.weight", h, 3 * h);
                TensorInfo cAttnB = tensor(p + "attn.c_attn.bias", 3 * h);
                return new LayerWeights(norm(p + "ln_1", h),
                        new LinearRef(cAttn, true, 0, h, h, cAttnB),
                        new LinearRef(cAttn, true, h, h, h, cAttnB),
                        new LinearRef(cAttn, true, 2 * h, h, h, cAttnB),
                        new LinearRef(tensor(p + "attn.c_proj.weight", h, h), true, 0, h, h, tensor(p + "attn.c_proj.bias", h)),
                        null, null, null, norm(p + "ln_2", h),
                        null,
                        new LinearRef(tensor(p + "mlp.c_fc.weight", h, ff), true, 0, ff, h, tensor(p + "mlp.c_fc.bias", ff)),
                        new LinearRef(tensor(p + "mlp.c_proj.weight", ff, h), true, 0, h, ff, tensor(p + "mlp.c_proj.bias", h)),
                        null);
            }
            case PHI3: {
                TensorInfo qkv = tensor(p + "self_attn.qkv_proj.weight", qd + 2 * kvd, h);
                TensorInfo qkvB = c.qkvBias ? tensor(p + "self_attn.qkv_proj.bias", qd + 2 * kvd) : null;
                TensorInfo gateUp = tensor(p + "mlp.gate_up_proj.weight", 2 * ff, h);
                TensorInfo gateUpB = c.mlpBias ? tensor(p + "mlp.gate_up_proj.bias", 2 * ff) : null;
                return new LayerWeights(norm(p + "input_layernorm", h),
                        new LinearRef(qkv, false, 0, qd, h, qkvB),
                        new LinearRef(qkv, false, qd, kvd, h, qkvB),
                        new LinearRef(qkv, false, qd + kvd, kvd, h, qkvB),
                        linear(p + "self_attn.o_proj", h, qd, c.oBias), null, null, null,
                        norm(p + "post_attention_layernorm", h),
                        new LinearRef(gateUp, false, 0, ff, h, gateUpB),
                        new LinearRef(gateUp, false, ff, ff, h, gateUpB),
                        linear(p + "mlp.down_proj", h, ff, c.mlpBias), null);
            }
            case NEOX:
                return neoxLayer(p, h, ff);
            default: {
                boolean sandwich = family.sandwichNorms, pre = family.preNorms;
                boolean gated = family.mlp == Family.Mlp.GATED;
                boolean full = family.qkNormScope == Family.QkNormScope.FULL;
                boolean experts = c.moe != null && c.moe.sparse(i);     // the MLP is in moe(i) instead
                boolean mla = c.mla != null;                            // q/k/v are in mla(i) instead
                return new LayerWeights(pre ? norm(p + "input_layernorm", h) : null,
                        mla ? null : linear(p + "self_attn.q_proj", qd, h, c.qkvBias),
                        mla ? null : linear(p + "self_attn.k_proj", kvd, h, c.qkvBias),
                        mla ? null : linear(p + "self_attn.v_proj", kvd, h, c.qkvBias),
                        linear(p + "self_attn.o_proj", h, mla ? c.mla.vDim(c.numHeads) : qd, c.oBias),
                        family.qkNorm ? norm(p + "self_attn.q_norm", full ? qd : c.headDim) : null,
                        family.qkNorm ? norm(p + "self_attn.k_norm", full ? kvd : c.headDim) : null,
                        sandwich ? norm(p + "post_attention_layernorm", h) : null,
                        pre ? norm(p + (sandwich ? "pre_feedforward_layernorm" : "post_attention_layernorm"), h) : null,
                        gated && !experts ? linear(p + family.mlpBlock + ".gate_proj", ff, h, c.mlpBias) : null,
                        experts ? null : linear(p + family.mlpBlock + ".up_proj", ff, h, c.mlpBias),
                        experts ? null : linear(p + family.mlpBlock + ".down_proj", h, ff, c.mlpBias),
                        sandwich ? norm(p + "post_feedforward_layernorm", h) : null);
            }
        }
    }

    /** GPT-NeoX: query_key_value rows are [heads, 3, head_dim]; q, k, v take every third block of head_dim rows. */
    private LayerWeights neoxLayer(String p, int h, int ff) {
        ModelConfig c = config;
        int hd = c.headDim, qkvRows = 3 * c.qDim();
        if (c.numKvHeads != c.numHeads) throw BadInputException.at(dir, "config 'num_key_value_heads'", "GPT-NeoX has no grouped KV heads");
        TensorInfo qkv = tensor(p + "attention.query_key_value.weight", qkvRows, h);
        TensorInfo qkvB = c.qkvBias ? tensor(p + "attention.query_key_value.bias", qkvRows) : null;
        return new LayerWeights(norm(p + "input_layernorm", h),
                new LinearRef(qkv, false, 0, c.qDim(), h, qkvB, hd, 3 * hd),
                new LinearRef(qkv, false, hd, c.qDim(), h, qkvB, hd, 3 * hd),
                new LinearRef(qkv, false, 2 * hd, c.qDim(), h, qkvB, hd, 3 * hd),
                linear(p + "attention.dense", h, c.qDim(), c.oBias), null, null, null,
                norm(p + "post_attention_layernorm", h),
                null,
                linear(p + "mlp.dense_h_to_4h", ff, h, c.mlpBias),
                linear(p + "mlp.dense_4h_to_h", h, ff, c.mlpBias),
                null);
    }

    /** Layer i's MLA attention weights, or null where the family projects q/k/v directly. */
    public MlaWeights mla(int i) {
        return mlaLayers == null ? mlaLayer(i) : mlaLayers.get(i);
    }

    /**
     * MLA's tensors (modeling_deepseek_v3.py): q_a_proj / kv_a_proj_with_mqa / o_proj carry attention_bias, q_proj,
     * q_b_proj and kv_b_proj never a bias; the two latent norms are RMSNorms of their rank.
     */
    private MlaWeights mlaLayer(int i) {
        MlaSpec m = config.mla;
        if (m == null) return null;
        int h = config.hiddenSize, heads = config.numHeads, qk = m.qkHeadDim(), nope = m.qkNopeHeadDim(), rope = m.qkRopeHeadDim();
        String p = "layers." + i + ".self_attn.";
        boolean bias = config.qkvBias;
        LinearRef qA = null;
        NormRef qANorm = null;
        TensorInfo qW;
        int qIn = h;
        if (m.qLora()) {
            qA = linear(p + "q_a_proj", m.qLoraRank(), h, bias);
            qANorm = norm(p + "q_a_layernorm", m.qLoraRank());
            qW = tensor(p + "q_b_proj.weight", (long) heads * qk, m.qLoraRank());
            qIn = m.qLoraRank();
        } else {
            qW = tensor(p + "q_proj.weight", (long) heads * qk, h);
        }
        TensorInfo kvA = tensor(p + "kv_a_proj_with_mqa.weight", m.kvLoraRank() + rope, h);
        TensorInfo kvABias = bias ? tensor(p + "kv_a_proj_with_mqa.bias", m.kvLoraRank() + rope) : null;
        int kv = nope + m.vHeadDim();
        TensorInfo kvB = tensor(p + "kv_b_proj.weight", (long) heads * kv, m.kvLoraRank());
        return new MlaWeights(qA, qANorm,
                new LinearRef(qW, false, 0, heads * nope, qIn, null, nope, qk),
                new LinearRef(qW, false, nope, heads * rope, qIn, null, rope, qk),
                new LinearRef(kvA, false, 0, m.kvLoraRank(), h, kvABias),
                new LinearRef(kvA, false, m.kvLoraRank(), rope, h, kvABias),
                norm(p + "kv_a_layernorm", m.kvLoraRank()),
                new LinearRef(kvB, false, 0, heads * nope, m.kvLoraRank(), null, nope, kv),
                new LinearRef(kvB, false, nope, heads * m.vHeadDim(), m.kvLoraRank(), null, m.vHeadDim(), kv));
    }

    /** Layer i's attention-sink logits [heads] (gpt-oss), or null. */
    public TensorInfo sinks(int i) {
        return family.attentionSinks ? tensor("layers." + i + ".self_attn.sinks", config.numHeads) : null;
    }

    /** Layer i's router and experts, or null where it runs the dense MLP. */
    public MoeWeights moe(int i) {
        return moeLayers == null ? moeLayer(i) : moeLayers.get(i);
    }

    private MoeWeights moeLayer(int i) {
        MoeSpec s = config.moe;
        if (s == null || !s.sparse(i)) return null;
        Family.ExpertNames n = family.moe.names();
        int h = config.hiddenSize, ff = s.expertSize, e = s.numExperts;
        List<MoeWeights.Expert> experts = new ArrayList<>();
        if (n == Family.GPT_OSS_EXPERTS) {
            String b = "layers." + i + ".mlp.";
            return new MoeWeights(linear(b + "router", e, h, true), List.of(), new MoeWeights.Fused(
                    tensor(b + "experts.gate_up_proj", e, h, 2L * ff), tensor(b + "experts.gate_up_proj_bias", e, 2L * ff),
                    tensor(b + "experts.down_proj", e, ff, h), tensor(b + "experts.down_proj_bias", e, h), e, h, ff));
        }
        if (n == Family.LLAMA4_EXPERTS) {
            String b = "layers." + i + ".feed_forward.";
            MoeWeights.Expert shared = new MoeWeights.Expert(linear(b + "shared_expert.gate_proj", ff, h, false),
                    linear(b + "shared_expert.up_proj", ff, h, false), linear(b + "shared_expert.down_proj", h, ff, false));
            return new MoeWeights(linear(b + "router", e, h, false), List.of(), new MoeWeights.Fused(
                    tensor(b + "experts.gate_up_proj", e, h, 2L * ff), null, tensor(b + "experts.down_proj", e, ff, h), null,
                    e, h, ff, false), null, shared);
        }
        // transformers v5's in-memory layout (a checkpoint saved without reverting it): [E, 2·ff, H] and [E, H, ff]
        for (String block : List.of(n.block(), "mlp")) {
            String b = "layers." + i + "." + block + ".";
            if (!store.has(prefix + b + "experts.gate_up_proj")) continue;
            TensorInfo gateUp = tensor(b + "experts.gate_up_proj", e, 2L * ff, h);
            TensorInfo down = tensor(b + "experts.down_proj", e, h, ff);
            for (int x = 0; x < e; x++)
                experts.add(new MoeWeights.Expert(new LinearRef(gateUp, false, (2 * x) * ff, ff, h, null),
                        new LinearRef(gateUp, false, (2 * x + 1) * ff, ff, h, null),
                        new LinearRef(down, false, x * h, h, ff, null)));
            return routedWithExtras(b, n, s, List.copyOf(experts));
        }
        String b = "layers." + i + "." + n.block() + ".";
        for (int x = 0; x < e; x++) {
            String ex = b + "experts." + x + ".";
            experts.add(new MoeWeights.Expert(linear(ex + n.gate(), ff, h, false), linear(ex + n.up(), ff, h, false),
                    linear(ex + n.down(), h, ff, false)));
        }
        return routedWithExtras(b, n, s, List.copyOf(experts));
    }

    /** The router, the experts, and (sigmoid routers) the correction bias and the shared expert, whichever layout. */
    private MoeWeights routedWithExtras(String b, Family.ExpertNames n, MoeSpec s, List<MoeWeights.Expert> experts) {
        int h = config.hiddenSize, e = s.numExperts;
        TensorInfo bias = s.router == Family.Router.SIGMOID_GROUPED ? tensor(b + n.router() + ".e_score_correction_bias", e) : null;
        MoeWeights.Expert shared = s.sharedSize == 0 ? null : new MoeWeights.Expert(
                linear(b + "shared_experts.gate_proj", s.sharedSize, h, false), linear(b + "shared_experts.up_proj", s.sharedSize, h, false),
                linear(b + "shared_experts.down_proj", h, s.sharedSize, false));
        return new MoeWeights(linear(b + n.router(), e, h, false), experts, null, bias, shared);
    }

    private LinearRef linear(String name, int out, int in, boolean bias) {
        return new LinearRef(tensor(name + ".weight", out, in), false, 0, out, in, bias ? tensor(name + ".bias", out) : null);
    }

    private NormRef norm(String name, int dim) {
        return new NormRef(tensor(name + ".weight", dim), family.norm.centered() ? tensor(name + ".bias", dim) : null);
    }

    private TensorInfo tensor(String relative, long... shape) {
        return exact(prefix + relative, shape);
    }

    private TensorInfo exact(String name, long... shape) {
        if (problems != null) {
            used.add(name);
            TensorInfo t = store.tensors().get(name);
            String broken = quantizedInstead(name);
            if (t != null && broken != null) {
                problems.putIfAbsent(name, broken);
                return t;
            }
            if (t == null) {
                problems.putIfAbsent(name, broken == null ? "missing" + otherQuantization() : "missing: " + broken);
                return new TensorInfo(name, store.dir(), DType.F32, shape, 0, 0); // placeholder, never read
            }
            if (!Arrays.equals(t.shape(), shape))
                problems.putIfAbsent(name, "shape " + t.shapeString() + " but the config implies " + Arrays.toString(shape));
            else if (!t.dtype().decodable)
                problems.putIfAbsent(name, "dtype " + t.dtype() + " cannot hold weights" + otherQuantization());
            return t;
        }
        String q = quantizedInstead(name);
        if (q != null) throw BadInputException.at(store.dir(), "tensor '" + name + "'", (store.has(name) ? "" : "missing: ") + q);
        if (!store.has(name) && !otherQuantization().isEmpty())
            throw BadInputException.at(store.dir(), "tensor '" + name + "'", "missing" + otherQuantization());
        TensorInfo t = store.info(name);
        if (!Arrays.equals(t.shape(), shape))
            throw BadInputException.at(t.file(), "tensor '" + name + "'", "shape " + t.shapeString() + " but the config implies " + Arrays.toString(shape));
        if (!t.dtype().decodable)
            throw BadInputException.at(t.file(), "tensor '" + name + "'", "dtype " + t.dtype() + " cannot hold weights" + otherQuantization());
        used.add(name);
        return t;
    }

    /**
     * Why a weight the release ships quantized cannot be read: its scale tensor missing, misnamed or malformed, or
     * the config not declaring the quantization ({@link TensorStore#quantProblems}). Null when it can.
     */
    private String quantizedInstead(String name) {
        return store.quantProblems().get(name);
    }

    /** Why a weight may be absent or unreadable: a quant_method other than the two modeldiff reads ("" otherwise). */
    private String otherQuantization() {
        String m = store.quantization().method();
        if (m == null || m.equals("fp8") || m.equals("mxfp4")) return "";
        return "; config.json's quantization_config declares quant_method '" + m + "', which modeldiff does not dequantize "
                + "(it reads fp8 with block scales and mxfp4)";
    }

    public List<LayerWeights> layers() {
        return layers;
    }

    /** Token embedding [vocab, hidden]. */
    public TensorInfo embedding() {
        return embedding;
    }

    /** Learned position embedding [max_positions, hidden], or null for RoPE families. */
    public TensorInfo positionEmbedding() {
        return positionEmbedding;
    }

    /** Output projection [vocab, hidden]; the embedding itself when tied. */
    public TensorInfo lmHead() {
        return lmHead;
    }

    public NormRef finalNorm() {
        return finalNorm;
    }

    /** Tensor names the family reads; anything else in the checkpoint is unexpected (lint). */
    public Set<String> usedTensorNames() {
        return Collections.unmodifiableSet(used);
    }

    /**
     * What {@link #open} would check, without throwing: every tensor name the family reads, and for each one that is
     * missing or malformed the reason (starting "missing", "shape" or "dtype"). Used by lint, which reports all
     * problems at once instead of the first.
     */
    public record Inspection(Set<String> expected, Map<String, String> problems, String embedding, String lmHead) {
    }

    public static Inspection inspect(ModelConfig config, TensorStore store) {
        Map<String, String> problems = new LinkedHashMap<>();
        Model m = new Model(store.dir(), config, store, problems);
        return new Inspection(Collections.unmodifiableSet(new LinkedHashSet<>(m.used)),
                Collections.unmodifiableMap(new LinkedHashMap<>(problems)), m.embedding.name(), m.lmHead.name());
    }

    public String name() {
        Path n = dir.toAbsolutePath().normalize().getFileName();
        return n == null ? dir.toString() : n.toString();
    }
}
