package modeldiff.model;

import com.fasterxml.jackson.databind.JsonNode;
import modeldiff.numeric.Activation;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * A release's config.json as HF transformers interprets it, normalised across transformers v4 keys
 * ({@code rope_theta}, {@code rope_scaling}, {@code torch_dtype}, {@code hidden_act}) and v5 keys
 * ({@code rope_parameters}, possibly per layer type, {@code dtype}, {@code hidden_activation}). Immutable.
 */
public final class ModelConfig {
    public final Path file;
    public final JsonNode raw;
    public final String modelType;
    public final Family family;
    public final int vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize;
    public final String activationName;
    public final Activation activation;
    public final double normEps;
    public final boolean tieWordEmbeddings, qkvBias, oBias, mlpBias;
    /** NaN when the family / config has no soft-cap. */
    public final double attnSoftcap, finalSoftcap;
    /** sqrt(hidden_size) for Gemma-style families, else 1. */
    public final double embedScale;
    public final int maxPositionEmbeddings;
    public final List<LayerSpec> layers;
    /**
     * GPT-2's two score switches, as its eager attention applies them in turn: divide by a sqrt(head_dim) tensor of the
     * activation dtype when scale_attn_weights, then by float(layer_idx + 1) when scale_attn_by_inverse_layer_idx.
     * (Their product is each layer's {@link LayerSpec#attnScale}; reduced-precision passes need the two steps.)
     */
    public final boolean scaleAttnWeights, scaleAttnByInverseLayer;
    /** GPT-NeoX use_parallel_residual: attention and MLP both read the block's input. */
    public final boolean parallelResidual;
    /** RoPE of the full-attention layers (what a per-layer-type scaling bug applies everywhere); null without RoPE. */
    public final RopeSpec fullAttentionRope;
    public final List<Integer> bosTokenIds, eosTokenIds, padTokenIds;
    /** The dtype the release declares (v5 "dtype", v4 "torch_dtype"), or null. */
    public final String declaredDtype;
    public final List<String> defaultsUsed;
    /** The mixture-of-experts routing, or null for a dense family. */
    public final MoeSpec moe;
    /** Multi-head latent attention's dims (DeepSeek-V3), or null for q/k/v-projection attention. */
    public final MlaSpec mla;

    private ModelConfig(Path file, JsonNode raw, Family family, ConfigReader r) {
        this.file = file;
        this.raw = raw;
        this.family = family;
        this.modelType = family.modelType;

        hiddenSize = r.requiredSize("hidden_size", "n_embd");
        numLayers = r.requiredSize("num_hidden_layers", "n_layer");
        numHeads = r.requiredSize("num_attention_heads", "n_head");
        vocabSize = r.requiredSize("vocab_size");
        JsonNode kv = r.node("num_key_value_heads");
        numKvHeads = kv != null ? r.positive("num_key_value_heads", kv) : numHeads;
        if (numHeads % numKvHeads != 0)
            throw r.bad("num_key_value_heads", numKvHeads + " does not divide num_attention_heads " + numHeads);
        mla = family.attention == Family.Attention.MLA ? readMla(r) : null;
        JsonNode hd = r.node("head_dim");
        if (mla != null) {
            headDim = mla.qkRopeHeadDim(); // HF: config.head_dim = qk_rope_head_dim, the width RoPE rotates
        } else if (hd != null) {
            headDim = r.positive("head_dim", hd);
        } else if (family.defaults.get("head_dim") instanceof Number n) {
            headDim = n.intValue(); // HF's class default (Gemma 256, Qwen3 128), not hidden/heads
            r.defaultsUsed.add("head_dim=" + headDim + " (HF default)");
        } else {
            if (hiddenSize % numHeads != 0)
                throw r.bad("num_attention_heads", numHeads + " does not divide hidden_size " + hiddenSize + " and no head_dim is given");
            headDim = hiddenSize / numHeads;
        }
        if (family.mlp == Family.Mlp.PLAIN && family.layout == Family.Layout.GPT2) {
            JsonNode inner = r.node("n_inner", "intermediate_size");
            intermediateSize = inner != null ? r.positive("n_inner", inner) : 4 * hiddenSize;
        } else if (!family.mlpSizeKey.equals("intermediate_size")) {
            intermediateSize = r.sizeOr(family.mlpSizeKey, 0);     // Llama 4: the dense layers' width, HF default if absent
            if (intermediateSize <= 0) throw r.bad(family.mlpSizeKey, "missing");
        } else {
            intermediateSize = r.requiredSize("intermediate_size");
        }

        activationName = r.string(family.activationKeys.toArray(new String[0]));
        activation = Activation.fromConfigName(activationName);
        if (activation == null)
            throw r.bad(family.activationKeys.get(0), "unknown activation '" + activationName + "'");
        normEps = r.number(family.epsKey);
        if (!(normEps >= 0) || Double.isInfinite(normEps)) throw r.bad(family.epsKey, "must be a finite non-negative number");

        tieWordEmbeddings = r.bool("tie_word_embeddings");
        qkvBias = resolveBias(family.qkvBias, r, "attention_bias");
        oBias = resolveBias(family.oBias, r, "attention_bias");
        mlpBias = resolveBias(family.mlpBias, r, "mlp_bias");

        attnSoftcap = r.optionalNumber("attn_logit_softcapping");
        finalSoftcap = r.optionalNumber("final_logit_softcapping");
        embedScale = family.embedScaleSqrtHidden ? Math.sqrt(hiddenSize) : 1.0;
        maxPositionEmbeddings = r.sizeOr(family.layout == Family.Layout.GPT2 ? "n_positions" : "max_position_embeddings", 0);

        checkDerivedSizes(r);
        parallelResidual = family.parallelResidualFromConfig && r.bool("use_parallel_residual");
        scaleAttnWeights = family.layout != Family.Layout.GPT2 || r.bool("scale_attn_weights");
        scaleAttnByInverseLayer = family.layout == Family.Layout.GPT2 && r.bool("scale_attn_by_inverse_layer_idx");
        fullAttentionRope = family.learnedPositions ? null : ropeFor(r, "full_attention");
        moe = family.moe == null ? null : MoeSpec.read(r, family.moe, numLayers);
        if (r.has("clip_qkv")) throw r.bad("clip_qkv", "clamping q/k/v (OLMo's clip_qkv) is not supported");
        if (family == Family.GLM4_MOE && r.bool("use_qk_norm")) throw r.bad("use_qk_norm", "GLM's q/k norm is not supported yet");
        layers = Collections.unmodifiableList(buildLayers(r));
        bosTokenIds = List.copyOf(r.tokenIds("bos_token_id"));
        eosTokenIds = List.copyOf(r.tokenIds("eos_token_id"));
        padTokenIds = List.copyOf(r.tokenIds("pad_token_id"));
        String dt = r.string("dtype", "torch_dtype");
        declaredDtype = dt;
        defaultsUsed = List.copyOf(r.defaultsUsed);
    }

    /** MLA's dims with HF's defaults; q_lora_rank null means a plain q_proj (DeepSeek-V2-Lite). */
    private static MlaSpec readMla(ConfigReader r) {
        int qLora = r.isNull("q_lora_rank") ? 0 : r.sizeOr("q_lora_rank", 0);
        int kvLora = r.sizeOr("kv_lora_rank", 0), nope = r.sizeOr("qk_nope_head_dim", 0);
        int rope = r.sizeOr("qk_rope_head_dim", 0), v = r.sizeOr("v_head_dim", 0);
        if (rope % 2 != 0) throw r.bad("qk_rope_head_dim", "RoPE needs an even number of dimensions, got " + rope);
        return new MlaSpec(qLora, kvLora, nope, rope, v, r.bool("rope_interleave"));
    }

    private static boolean resolveBias(Family.Bias rule, ConfigReader r, String key) {
        return switch (rule) {
            case NONE -> false;
            case ALWAYS -> true;
            case FROM_CONFIG -> r.bool(key);
        };
    }

    /** A config.json larger than this is not a config (the largest real ones are a few hundred KiB). */
    public static final long MAX_CONFIG_BYTES = 16L * 1024 * 1024;
    /** Sizes past these are refused before anything is allocated from them (the largest releases are far below). */
    public static final int MAX_LAYERS = 4096;

    public static ModelConfig load(Path modelDir) {
        Path file = modelDir.resolve("config.json");
        if (!Files.exists(file)) throw BadInputException.at(modelDir, "config.json", "missing from the model folder");
        if (!Files.isRegularFile(file)) throw BadInputException.at(file, "file", "not a regular file");
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_CONFIG_BYTES)
                throw BadInputException.at(file, "file", size + " bytes; a config.json over " + MAX_CONFIG_BYTES + " bytes is refused");
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw BadInputException.at(file, "file", "cannot read: " + e.getMessage());
        }
        return parse(file, bytes);
    }

    /** config.json's bytes as read from {@code file} (which only names it in messages; the fuzz tests' entry point). */
    public static ModelConfig parse(Path file, byte[] bytes) {
        JsonNode root;
        try {
            root = SafeTensorsFile.JSON.readTree(bytes);
        } catch (IOException e) {
            String m = e instanceof com.fasterxml.jackson.core.JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            throw BadInputException.at(file, "file", "not valid JSON: " + String.valueOf(m).lines().findFirst().orElse(""));
        }
        if (root == null || !root.isObject()) throw BadInputException.at(file, "file", "must hold a JSON object");
        JsonNode mt = root.get("model_type");
        if (mt == null || !mt.isTextual())
            throw BadInputException.at(file, "key 'model_type'", "missing; supported: " + Family.supportedTypes());
        Family family = Family.forModelType(mt.asText());
        if (family == null)
            throw BadInputException.at(file, "key 'model_type'", "unsupported model type '" + SafeTensorsFile.abbreviate(mt.asText())
                    + "'; supported: " + Family.supportedTypes());
        return new ModelConfig(file, root, family, new ConfigReader(file, root, family.defaults));
    }

    /** Every weight shape the layouts derive from the sizes must fit an int (and so a Java array dimension). */
    private void checkDerivedSizes(ConfigReader r) {
        if (numLayers > MAX_LAYERS) throw r.bad("num_hidden_layers", numLayers + " layers; more than " + MAX_LAYERS + " is refused");
        long q = (long) numHeads * headDim, kv = (long) numKvHeads * headDim;
        if (mla != null && (long) numHeads * (mla.qkHeadDim() + mla.vHeadDim()) > Integer.MAX_VALUE)
            throw r.bad("num_attention_heads", numHeads + " MLA heads overflow a weight dimension");
        if (q > Integer.MAX_VALUE || q + 2 * kv > Integer.MAX_VALUE)
            throw r.bad("num_attention_heads", numHeads + " heads of head_dim " + headDim + " overflow a weight dimension");
        if (2L * intermediateSize > Integer.MAX_VALUE)
            throw r.bad("intermediate_size", intermediateSize + " overflows a weight dimension (2 x intermediate_size)");
        if (3L * hiddenSize > Integer.MAX_VALUE)
            throw r.bad("hidden_size", hiddenSize + " overflows a weight dimension (3 x hidden_size)");
    }

    // ---- per-layer attention window and RoPE ----

    private List<LayerSpec> buildLayers(ConfigReader r) {
        boolean[] sliding = slidingLayers(r);
        double window = r.optionalNumber("sliding_window");
        boolean anySliding = false;
        for (boolean s : sliding) anySliding |= s;
        if (anySliding && (Double.isNaN(window) || window < 1 || window != Math.rint(window)))
            throw r.bad("sliding_window", "layers are sliding but the window is " + (Double.isNaN(window) ? "null" : window));
        RopeSpec global = null, local = null;
        if (!family.learnedPositions) {
            global = ropeFor(r, "full_attention");
            local = ropeFor(r, "sliding_attention");
        }
        double scale = attentionScale(r);
        boolean byInverseLayer = family.layout == Family.Layout.GPT2 && r.bool("scale_attn_by_inverse_layer_idx");
        boolean[] nope = nopeLayers(r);
        LayerSpec.Llama4[] l4 = family.llama4Attention ? llama4Layers(r, nope) : new LayerSpec.Llama4[numLayers];
        List<LayerSpec> out = new ArrayList<>(numLayers);
        for (int i = 0; i < numLayers; i++) {
            double s = byInverseLayer ? scale / (i + 1) : scale;
            out.add(new LayerSpec(i, sliding[i] ? (int) window : 0, sliding[i] ? local : global, s, nope[i], l4[i]));
        }
        return out;
    }

    /**
     * Llama 4 (configuration_llama4.py __post_init__, Llama4TextAttention.__init__): layer_types default to
     * chunked_attention on RoPE layers and full_attention on NoPE layers; the chunk is attention_chunk_size (null: no
     * chunking); the L2 q/k norm sits on RoPE layers when use_qk_norm; temperature tuning on NoPE layers when
     * attn_temperature_tuning.
     */
    private LayerSpec.Llama4[] llama4Layers(ConfigReader r, boolean[] nope) {
        JsonNode types = r.node("layer_types");
        boolean[] chunked = new boolean[numLayers];
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != numLayers)
                throw r.bad("layer_types", "must list one type per layer (" + numLayers + ")");
            for (int i = 0; i < numLayers; i++) {
                String t = types.get(i).asText();
                if (!t.equals("chunked_attention") && !t.equals("full_attention"))
                    throw r.bad("layer_types", "unknown layer type '" + t + "' (Llama 4: chunked_attention or full_attention)");
                chunked[i] = t.equals("chunked_attention");
            }
        } else {
            for (int i = 0; i < numLayers; i++) chunked[i] = !nope[i];
        }
        double chunk = r.optionalNumber("attention_chunk_size");
        if (!Double.isNaN(chunk) && (chunk < 1 || chunk != Math.rint(chunk) || chunk > Integer.MAX_VALUE))
            throw r.bad("attention_chunk_size", "must be a positive integer or null, got " + chunk);
        boolean qkNorm = r.bool("use_qk_norm"), tuning = r.bool("attn_temperature_tuning");
        double attnScale = tuning ? r.number("attn_scale") : 0, floor = tuning ? r.number("floor_scale") : 1;
        if (tuning && !(floor > 0)) throw r.bad("floor_scale", "must be positive, got " + floor);
        LayerSpec.Llama4[] out = new LayerSpec.Llama4[numLayers];
        for (int i = 0; i < numLayers; i++)
            out[i] = new LayerSpec.Llama4(chunked[i] && !Double.isNaN(chunk) ? (int) chunk : 0, qkNorm && !nope[i],
                    nope[i] ? attnScale : 0, floor);
        return out;
    }

    /**
     * SmolLM3: no_rope_layers[i] == 1 means layer i USES RoPE (HF: self.use_rope = config.no_rope_layers[layer_idx]);
     * absent, HF derives int((i + 1) % no_rope_layer_interval != 0).
     */
    private boolean[] nopeLayers(ConfigReader r) {
        boolean[] nope = new boolean[numLayers];
        if (!family.noRopeLayers) return nope;
        JsonNode list = r.node("no_rope_layers");
        if (list != null && list.isArray() && list.size() > 0) {
            if (list.size() != numLayers) throw r.bad("no_rope_layers", "must list one flag per layer (" + numLayers + ")");
            for (int i = 0; i < numLayers; i++) {
                JsonNode v = list.get(i);
                if (!v.isNumber() && !v.isBoolean()) throw r.bad("no_rope_layers", "entry " + i + " is not 0/1");
                nope[i] = v.isBoolean() ? !v.asBoolean() : v.asInt() == 0;
            }
            return nope;
        }
        int interval = r.sizeOr("no_rope_layer_interval", 4);
        for (int i = 0; i < numLayers; i++) nope[i] = (i + 1) % interval == 0;
        return nope;
    }

    private double attentionScale(ConfigReader r) {
        if (family.queryPreAttnScalar) {
            double q = r.number("query_pre_attn_scalar");
            if (!(q > 0)) throw r.bad("query_pre_attn_scalar", "must be positive, got " + q);
            return 1.0 / Math.sqrt(q);
        }
        if (family.layout == Family.Layout.GPT2 && !r.bool("scale_attn_weights")) return 1.0;
        if (mla != null) return mla.scoreScale(ropeFor(r, "full_attention"), false);
        return 1.0 / Math.sqrt(headDim);
    }

    private boolean[] slidingLayers(ConfigReader r) {
        boolean[] s = new boolean[numLayers];
        if (family.llama4Attention) return s;   // Llama 4's layer_types name chunked layers (llama4Layers), none slide
        JsonNode types = r.node("layer_types");
        if (types != null) {
            if (!types.isArray() || types.size() != numLayers)
                throw r.bad("layer_types", "must list one type per layer (" + numLayers + ")");
            for (int i = 0; i < numLayers; i++) {
                String t = types.get(i).asText();
                if (!t.equals("sliding_attention") && !t.equals("full_attention"))
                    throw r.bad("layer_types", "unknown layer type '" + t + "'");
                s[i] = t.equals("sliding_attention");
            }
            return s;
        }
        switch (family.sliding) {
            case NONE -> { }
            case ALL_IF_SET -> {
                boolean set = r.has("sliding_window");
                for (int i = 0; i < numLayers; i++) s[i] = set;
            }
            case QWEN -> {
                boolean use = r.bool("use_sliding_window");
                int from = r.sizeOr("max_window_layers", 0);
                for (int i = 0; i < numLayers; i++) s[i] = use && i >= from && r.has("sliding_window");
            }
            case ALTERNATE -> {
                for (int i = 0; i < numLayers; i++) s[i] = (i + 1) % 2 != 0;
            }
            case PATTERN -> {
                int pattern = r.sizeOr("sliding_window_pattern", 6);
                for (int i = 0; i < numLayers; i++) s[i] = (i + 1) % pattern != 0;
            }
            case NOPE_LAYERS -> {
                boolean use = r.bool("use_sliding_window") && !Double.isNaN(r.optionalNumber("sliding_window"));
                boolean[] nope = nopeLayers(r);
                for (int i = 0; i < numLayers; i++) s[i] = use && nope[i];
            }
        }
        return s;
    }

    /**
     * RoPE for layers of the given type. v5 may nest {@code rope_parameters} by layer type; v4 Gemma 3 uses
     * {@code rope_local_base_freq} (unscaled) on sliding layers and rope_theta + rope_scaling on global ones.
     */
    private RopeSpec ropeFor(ConfigReader r, String layerType) {
        JsonNode params = r.node("rope_parameters");
        if (params != null && !params.isObject()) throw r.bad("rope_parameters", "must be an object");
        if (params != null && (params.has("full_attention") || params.has("sliding_attention"))) {
            JsonNode p = params.get(layerType);
            if (p == null) p = params.get("full_attention");
            return parseRope(r, p, "rope_parameters." + layerType);
        }
        if (params != null) return parseRope(r, params, "rope_parameters");
        if (family == Family.GEMMA3_TEXT && layerType.equals("sliding_attention"))
        {
            double local = r.number("rope_local_base_freq");
            if (!(local > 0)) throw r.bad("rope_local_base_freq", "must be positive, got " + local);
            return RopeSpec.plain(local, partialFactor(r, null), maxPositionsForRope(r));
        }
        JsonNode scaling = r.node("rope_scaling");
        return parseRope(r, scaling, "rope_scaling");
    }

    private int maxPositionsForRope(ConfigReader r) {
        return r.sizeOr("max_position_embeddings", 0);
    }

    private double partialFactor(ConfigReader r, JsonNode params) {
        JsonNode p = params == null ? null : params.get("partial_rotary_factor");
        double v;
        String key = "partial_rotary_factor";
        if (p != null && p.isNumber()) {
            v = p.asDouble();
            key = "rope_parameters.partial_rotary_factor";
        } else if (family.layout == Family.Layout.NEOX && r.has("rotary_pct") && !r.has("partial_rotary_factor")) {
            v = r.number("rotary_pct"); // transformers v4 GPT-NeoX configs
            key = "rotary_pct";
        } else if (r.has("partial_rotary_factor") || family.defaults.containsKey("partial_rotary_factor")) {
            v = r.number("partial_rotary_factor");
        } else {
            v = 1.0;
        }
        if (!(v > 0 && v <= 1)) throw r.bad(key, "must be in (0, 1], got " + v);
        int rotary = (int) (headDim * v);
        if (rotary < 2 || rotary % 2 != 0)
            throw r.bad(key, "head_dim " + headDim + " x " + v + " gives " + rotary + " rotated dimensions; RoPE needs an even number >= 2");
        return v;
    }

    /** One rope block (v5 rope_parameters, v4 rope_scaling, or null for plain RoPE from rope_theta). */
    private RopeSpec parseRope(ConfigReader r, JsonNode p, String where) {
        if (p != null && !p.isObject()) throw r.bad(where, "must be an object");
        String type = "default";
        if (p != null) {
            JsonNode t = p.has("rope_type") ? p.get("rope_type") : p.get("type");
            if (t != null && !t.isNull()) type = t.asText().toLowerCase(Locale.ROOT);
        }
        if (type.equals("su")) type = "longrope"; // Phi-3's original name for the same scheme
        List<String> known = List.of("default", "linear", "dynamic", "llama3", "yarn", "longrope");
        if (!known.contains(type)) throw r.bad(where, "unsupported rope type '" + type + "'; supported: " + known);
        double theta = p != null && p.has("rope_theta") ? num(r, p, "rope_theta", where)
                : family.layout == Family.Layout.NEOX && r.has("rotary_emb_base") && !r.has("rope_theta") ? r.number("rotary_emb_base")
                : r.number("rope_theta");
        if (!(theta > 0)) throw r.bad(p != null && p.has("rope_theta") ? where + ".rope_theta" : "rope_theta", "must be positive, got " + theta);
        int maxPos = maxPositionsForRope(r);
        double partial = partialFactor(r, p);
        int originalMax = 0;
        if (p != null && p.has("original_max_position_embeddings")) {
            double om = num(r, p, "original_max_position_embeddings", where);
            if (om != Math.rint(om) || om > Integer.MAX_VALUE)
                throw r.bad(where + ".original_max_position_embeddings", "expected an integer, got " + om);
            originalMax = (int) om;
        }
        else if (r.has("original_max_position_embeddings"))
            originalMax = r.positive("original_max_position_embeddings", r.node("original_max_position_embeddings"));
        double factor = p != null && p.has("factor") && !p.get("factor").isNull() ? num(r, p, "factor", where) : Double.NaN;
        if ((type.equals("linear") || type.equals("dynamic") || type.equals("llama3") || type.equals("yarn"))
                && !(factor > 0)) throw r.bad(where + ".factor", "rope type " + type + " needs a positive factor");
        if (originalMax < 0) throw r.bad(where + ".original_max_position_embeddings", "must be positive, got " + originalMax);
        if (type.equals("llama3") && originalMax <= 0)
            throw r.bad(where + ".original_max_position_embeddings", "llama3 rope needs it");
        if (type.equals("llama3"))
            for (String k : List.of("low_freq_factor", "high_freq_factor"))
                if (!(opt(r, p, k, where) > 0)) throw r.bad(where + "." + k, "llama3 rope needs a positive " + k);
        double[] shortF = null, longF = null;
        if (type.equals("longrope")) {
            int half = Math.max(1, (int) (headDim * partial) / 2);
            shortF = factors(r, p, "short_factor", where, half);
            longF = factors(r, p, "long_factor", where, half);
        }
        return new RopeSpec(type, theta, partial, factor,
                opt(r, p, "low_freq_factor", where), opt(r, p, "high_freq_factor", where), originalMax,
                opt(r, p, "beta_fast", where), opt(r, p, "beta_slow", where), opt(r, p, "mscale", where),
                opt(r, p, "mscale_all_dim", where), opt(r, p, "attention_factor", where),
                p == null || !p.has("truncate") || p.get("truncate").asBoolean(true), shortF, longF, maxPos);
    }

    private static double num(ConfigReader r, JsonNode p, String key, String where) {
        JsonNode n = p.get(key);
        if (n == null || !n.isNumber()) throw r.bad(where + "." + key, "expected a number, got " + (n == null ? "nothing" : ConfigReader.abbreviate(n)));
        if (!Double.isFinite(n.asDouble())) throw r.bad(where + "." + key, "must be finite, got " + ConfigReader.abbreviate(n));
        return n.asDouble();
    }

    private static double opt(ConfigReader r, JsonNode p, String key, String where) {
        if (p == null || !p.has(key) || p.get(key).isNull()) return Double.NaN;
        return num(r, p, key, where);
    }

    private static double[] factors(ConfigReader r, JsonNode p, String key, String where, int expected) {
        JsonNode n = p.get(key);
        if (n == null || !n.isArray() || n.size() != expected)
            throw r.bad(where + "." + key, "longrope needs " + expected + " factors (rotary_dim / 2)");
        double[] out = new double[expected];
        for (int i = 0; i < expected; i++) {
            if (!n.get(i).isNumber() || !Double.isFinite(n.get(i).asDouble()))
                throw r.bad(where + "." + key, "entry " + i + " is not a finite number");
            out[i] = n.get(i).asDouble();
        }
        return out;
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }
}
