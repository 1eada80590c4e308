package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.TensorInfo;
import modeldiff.numeric.Activation;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import static modeldiff.lint.Severity.ERROR;
import static modeldiff.lint.Severity.INFO;
import static modeldiff.lint.Severity.WARNING;

/** Rules on config.json. Each works from the raw JSON when the normalised config could not be built. */
final class ConfigRules {
    private ConfigRules() {
    }

    static void run(LintContext c) {
        if (c.raw == null) return;
        specialTokens(c);
        slidingWindow(c);
        activation(c);
        headDim(c);
        swigluLimit(c);
        attnScale(c);
        rope(c);
        vocab(c);
    }

    // ---------------------------------------------------------------- special tokens

    private static void specialTokens(LintContext c) {
        List<Integer> bos = c.tokenIds("bos_token_id"), eos = c.tokenIds("eos_token_id"), pad = c.tokenIds("pad_token_id");
        Set<Integer> both = new LinkedHashSet<>(pad);
        both.retainAll(eos);
        if (!both.isEmpty())
            c.add(Rules.PAD_EQUALS_EOS, WARNING, "pad_token_id " + both + " is also an EOS id: a trainer that masks padding "
                            + "out of the loss also masks EOS, so fine-tunes never learn to stop",
                    "give padding its own id (an unused / reserved token), or leave pad_token_id null",
                    "pad_token_id", pad, "eos_token_id", eos);
        int vocab = c.vocabSize();
        if (vocab <= 0) return;
        Map<String, List<Integer>> all = new LinkedHashMap<>();
        all.put("bos_token_id", bos);
        all.put("eos_token_id", eos);
        all.put("pad_token_id", pad);
        all.forEach((key, ids) -> {
            List<Integer> bad = ids.stream().filter(i -> i < 0 || i >= vocab).toList();
            if (!bad.isEmpty())
                c.add(Rules.SPECIAL_TOKEN_OUT_OF_RANGE, ERROR, key + " " + bad + " is outside the vocabulary [0, " + vocab
                                + "): the embedding has no such row", "fix " + key + " or vocab_size",
                        "key", key, "ids", bad, "vocab_size", vocab);
        });
    }

    // ---------------------------------------------------------------- sliding window

    private static void slidingWindow(LintContext c) {
        // window -> number of layers that slide with it (-1: unknown, the config did not load)
        Map<Integer, Integer> windows = new LinkedHashMap<>();
        if (c.config != null) {
            for (LayerSpec l : c.config.layers) if (l.sliding()) windows.merge(l.slidingWindow(), 1, Integer::sum);
        } else {
            JsonNode w = c.raw.get("sliding_window");
            boolean qwenOff = c.family != null && c.family.sliding == Family.SlidingRule.QWEN
                    && !c.raw.path("use_sliding_window").asBoolean(false);
            if (w != null && w.isIntegralNumber() && w.asInt() > 0 && !qwenOff) windows.put(w.asInt(), -1);
        }
        int maxPos = c.maxPositions();
        windows.forEach((w, layers) -> {
            Object nLayers = layers < 0 ? null : layers;
            if (Integer.bitCount(w) != 1) {
                if (Integer.bitCount(w + 1) == 1) {
                    c.add(Rules.SLIDING_WINDOW, WARNING, "sliding_window " + w + " is one less than " + (w + 1)
                                    + ": the Phi-3 off-by-one pattern (Phi-3-mini-4k shipped 2047). Implementations disagree on "
                                    + "whether the window counts the current token, so W and W+1 both occur in the wild; see "
                                    + Rules.REF_PHI3_WINDOW + " and " + Rules.REF_WINDOW_OFF_BY_ONE,
                            "window=" + (w + 1),
                            "sliding_window", w, "sliding_layers", nLayers, "max_position_embeddings", maxPos > 0 ? maxPos : null,
                            "references", List.of(Rules.REF_PHI3_WINDOW, Rules.REF_WINDOW_OFF_BY_ONE, Rules.REF_PHI3_CONFIG));
                } else {
                    c.add(Rules.SLIDING_WINDOW, INFO, "sliding_window " + w + " is not a power of two (windows are "
                                    + "usually 2^k; compare Phi-3's 2047, " + Rules.REF_PHI3_WINDOW + ")",
                            "window=" + Integer.highestOneBit(w) + " or window=" + (Integer.highestOneBit(w) << 1) + " to test a neighbouring power of two",
                            "sliding_window", w, "sliding_layers", nLayers);
                }
            }
            if (maxPos > 0 && w > maxPos)
                c.add(Rules.SLIDING_WINDOW, WARNING, "sliding_window " + w + " is larger than the context (max_position_embeddings "
                                + maxPos + "): the window never applies, so either it or the context length is wrong",
                        "set sliding_window to the trained window (or null if the model never slides)",
                        "sliding_window", w, "max_position_embeddings", maxPos, "sliding_layers", nLayers);
        });
    }

    // ---------------------------------------------------------------- activation (Gemma)

    private static void activation(LintContext c) {
        if (c.family == null || !c.family.activationKeys.contains("hidden_activation")) return;
        String act = LintContext.text(c.raw, "hidden_act");
        String actv = LintContext.text(c.raw, "hidden_activation");
        String effective = c.config != null ? c.config.activationName : firstNonNull(actv,
                c.family.activationKeys.contains("hidden_act") ? act : null,
                (String) c.family.defaults.get("hidden_activation"));
        Activation eff = Activation.fromConfigName(effective);
        if (eff == Activation.GELU_EXACT) {
            c.add(Rules.ACTIVATION_CONFLICT, WARNING, "the config runs exact GELU ('" + effective + "'), but the " + c.family
                            + " family was trained with the tanh approximation (gelu_pytorch_tanh); HF transformers fixed this in "
                            + Rules.REF_GEMMA_GELU + " and ignores hidden_act for Gemma",
                    "act.gelu_tanh",
                    "hidden_act", act, "hidden_activation", actv, "effective", effective, "reference", Rules.REF_GEMMA_GELU);
            return;
        }
        if (act != null && Activation.fromConfigName(act) != eff) {
            Activation a = Activation.fromConfigName(act);
            String fix = a == Activation.GELU_EXACT ? "act.gelu_exact reproduces an implementation that reads hidden_act; set hidden_act to '" + effective + "'"
                    : "set hidden_act to '" + effective + "' so every implementation computes the same function";
            c.add(Rules.ACTIVATION_CONFLICT, WARNING, "hidden_act '" + act + "' disagrees with " + (actv != null ? "hidden_activation '" + actv + "'"
                            : "the family default '" + effective + "'") + ", which HF transformers uses; implementations that read hidden_act "
                            + "(as early Gemma ports did, " + Rules.REF_GEMMA_GELU + ") compute a different MLP",
                    fix, "hidden_act", act, "hidden_activation", actv, "effective", effective, "reference", Rules.REF_GEMMA_GELU);
        }
    }

    // ---------------------------------------------------------------- head_dim, attention scale

    private static void headDim(LintContext c) {
        if (c.family == null || c.family.layout == Family.Layout.GPT2) return;
        if (c.config != null && c.config.mla != null) {
            mlaRows(c, c.config.mla);
            return;
        }
        int hidden = c.hiddenSize(), heads = c.numHeads();
        if (hidden <= 0 || heads <= 0) return;
        JsonNode hdNode = c.raw.get("head_dim");
        Integer given = hdNode != null && hdNode.isIntegralNumber() ? hdNode.asInt() : null;
        boolean derives = !c.family.defaults.containsKey("head_dim");
        if (given != null && derives && hidden % heads == 0 && given != hidden / heads)
            c.add(Rules.HEAD_DIM, WARNING, "head_dim " + given + " != hidden_size / num_attention_heads = " + hidden / heads
                            + "; " + c.family + " normally derives it, so implementations that do (as HF Mistral did before Mistral-Nemo) "
                            + "build attention of the wrong width",
                    "keep head_dim, and check other implementations read it rather than deriving hidden/heads",
                    "head_dim", given, "hidden_size", hidden, "num_attention_heads", heads, "derived", hidden / heads);
        int hd = c.config != null ? c.config.headDim : given != null ? given
                : c.family.defaults.get("head_dim") instanceof Number n ? n.intValue() : hidden % heads == 0 ? hidden / heads : -1;
        if (hd <= 0) return;
        int kv = c.config != null ? c.config.numKvHeads : c.rawInt("num_key_value_heads", heads);
        String p = c.layerPrefix() + "layers.0.self_attn.";
        if (c.family.layout == Family.Layout.PHI3) {
            checkRows(c, p + "qkv_proj.weight", (long) (heads + 2 * kv) * hd, "(num_attention_heads + 2 * num_key_value_heads) * head_dim", heads, kv, hd);
        } else {
            checkRows(c, p + "q_proj.weight", (long) heads * hd, "num_attention_heads * head_dim", heads, kv, hd);
            checkRows(c, p + "k_proj.weight", (long) kv * hd, "num_key_value_heads * head_dim", heads, kv, hd);
        }
    }

    /**
     * MLA (DeepSeek-V3) has no single head_dim: head_dim in its config is the rope part's width, and q, k and v have
     * widths of their own (qk_nope + qk_rope, v_head_dim), so the rows are checked against those.
     */
    private static void mlaRows(LintContext c, modeldiff.model.MlaSpec m) {
        int heads = c.config.numHeads;
        String p = c.layerPrefix() + "layers.0.self_attn.";
        checkRows(c, p + (m.qLora() ? "q_b_proj.weight" : "q_proj.weight"), (long) heads * m.qkHeadDim(),
                "num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim)", heads, heads, m.qkHeadDim());
        checkRows(c, p + "kv_b_proj.weight", (long) heads * (m.qkNopeHeadDim() + m.vHeadDim()),
                "num_attention_heads * (qk_nope_head_dim + v_head_dim)", heads, heads, m.qkNopeHeadDim() + m.vHeadDim());
    }

    private static void checkRows(LintContext c, String name, long expected, String formula, int heads, int kv, int hd) {
        TensorInfo t = c.tensor(name);
        if (t == null || t.rank() != 2 || t.shape()[0] == expected) return;
        long rows = t.shape()[0];
        String implied = name.endsWith("k_proj.weight") ? (rows % kv == 0 ? " (the weights imply head_dim " + rows / kv + ")" : "")
                : name.endsWith("q_proj.weight") ? (rows % heads == 0 ? " (the weights imply head_dim " + rows / heads + ")" : "")
                : (rows % (heads + 2L * kv) == 0 ? " (the weights imply head_dim " + rows / (heads + 2L * kv) + ")" : "");
        c.explainedTensors.add(name);
        c.add(Rules.HEAD_DIM, ERROR, name + " has " + rows + " rows but " + formula + " = " + expected + implied,
                "set head_dim (and the head counts) to match the weights",
                "tensor", name, "shape", List.of(t.shape()[0], t.shape()[1]), "num_attention_heads", heads,
                "num_key_value_heads", kv, "head_dim", hd, "expected_rows", expected);
    }

    /** The clamp HF transformers 5.17 hard-codes in GptOssExperts (alpha 1.702, limit 7.0), config.swiglu_limit unread. */
    static final double HF_GPT_OSS_LIMIT = 7.0;

    private static void swigluLimit(LintContext c) {
        if (c.family == null || c.family.moe == null || c.family.moe.names() != Family.GPT_OSS_EXPERTS) return;
        JsonNode n = c.raw.get("swiglu_limit");
        if (n == null || !n.isNumber() || n.asDouble() == HF_GPT_OSS_LIMIT) return;
        c.add(Rules.SWIGLU_LIMIT, WARNING, "swiglu_limit " + n.asDouble() + ": HF transformers clamps gpt-oss's SwiGLU at "
                        + HF_GPT_OSS_LIMIT + " whatever the config says, implementations that read swiglu_limit (OpenAI's own) clamp at "
                        + n.asDouble() + ", so they compute different experts wherever |gate| or |up| passes the smaller limit",
                "set swiglu_limit to 7.0, or make sure every implementation you ship for honours it (modeldiff's passes follow HF: 7.0)",
                "swiglu_limit", n.asDouble(), "hf_limit", HF_GPT_OSS_LIMIT, "reference", Rules.REF_GPT_OSS_LIMIT);
    }

    private static void attnScale(LintContext c) {
        if (c.family == null || !c.family.queryPreAttnScalar) return;
        JsonNode q = c.raw.get("query_pre_attn_scalar");
        double scalar = q != null && q.isNumber() ? q.asDouble()
                : c.family.defaults.get("query_pre_attn_scalar") instanceof Number n ? n.doubleValue() : Double.NaN;
        int hidden = c.hiddenSize(), heads = c.numHeads();
        int hd = c.config != null ? c.config.headDim : c.rawInt("head_dim", -1);
        if (Double.isNaN(scalar) || hd <= 0 || hidden <= 0 || heads <= 0) return;
        double perHead = (double) hidden / heads;
        if (scalar != hd && scalar != perHead)
            c.add(Rules.ATTN_SCALE, INFO, "query_pre_attn_scalar " + num(scalar) + " is neither head_dim " + hd + " nor hidden_size / num_attention_heads "
                            + num(perHead) + " (Gemma 2 9B uses head_dim, 27B hidden/heads); implementations that hard-code either scale differ",
                    "attn.scalar=" + hd + " reproduces an implementation that scales by head_dim",
                    "query_pre_attn_scalar", scalar, "head_dim", hd, "hidden_over_heads", perHead);
    }

    // ---------------------------------------------------------------- RoPE scaling

    static final List<String> ROPE_TYPES = List.of("default", "linear", "dynamic", "llama3", "yarn", "longrope", "su");

    private static void rope(LintContext c) {
        if (c.family != null && c.family.learnedPositions) return;
        List<Map.Entry<String, JsonNode>> blocks = new ArrayList<>();
        JsonNode params = c.raw.get("rope_parameters");
        if (params != null && params.isObject()) {
            if (params.has("full_attention") || params.has("sliding_attention")) {
                params.fields().forEachRemaining(e -> {
                    if (e.getValue().isObject()) blocks.add(Map.entry("rope_parameters." + e.getKey(), e.getValue()));
                });
            } else {
                blocks.add(Map.entry("rope_parameters", params));
            }
        } else {
            JsonNode scaling = c.raw.get("rope_scaling");
            if (scaling != null && scaling.isObject()) blocks.add(Map.entry("rope_scaling", scaling));
        }
        int maxPos = c.maxPositions();
        JsonNode topOriginal = c.raw.get("original_max_position_embeddings");
        for (Map.Entry<String, JsonNode> e : blocks) ropeBlock(c, e.getKey(), e.getValue(), maxPos, topOriginal);
    }

    private static void ropeBlock(LintContext c, String where, JsonNode p, int maxPos, JsonNode topOriginal) {
        JsonNode t = p.has("rope_type") ? p.get("rope_type") : p.get("type");
        String type = t == null || t.isNull() ? "default" : t.asText().toLowerCase(Locale.ROOT);
        double factor = p.path("factor").isNumber() ? p.get("factor").asDouble() : Double.NaN;
        JsonNode origNode = p.has("original_max_position_embeddings") ? p.get("original_max_position_embeddings") : topOriginal;
        double original = origNode != null && origNode.isNumber() ? origNode.asDouble() : Double.NaN;
        Object[] ev = {"where", where, "rope_type", type, "factor", Double.isNaN(factor) ? null : factor,
                "max_position_embeddings", maxPos > 0 ? maxPos : null,
                "original_max_position_embeddings", Double.isNaN(original) ? null : (long) original};
        if (!ROPE_TYPES.contains(type)) {
            c.add(Rules.ROPE_SCALING, ERROR, where + ": unknown rope type '" + type + "' (known: " + ROPE_TYPES
                    + "); HF transformers refuses to load it, other implementations may silently run plain RoPE", "use a supported rope_type", ev);
            return;
        }
        boolean needsFactor = type.equals("linear") || type.equals("dynamic") || type.equals("llama3") || type.equals("yarn");
        if (needsFactor && !(factor > 0)) {
            c.add(Rules.ROPE_SCALING, ERROR, where + ": rope type " + type + " needs a positive factor", "add factor", ev);
            return;
        }
        if (type.equals("default") && !Double.isNaN(factor) && factor != 1.0)
            c.add(Rules.ROPE_SCALING, WARNING, where + ": factor " + num(factor) + " with the default rope type is ignored by HF "
                    + "transformers; implementations that apply any factor they find will scale", "rope.scaling_ignored matches HF; or set rope_type", ev);
        if (needsFactor && factor < 1)
            c.add(Rules.ROPE_SCALING, WARNING, where + ": factor " + num(factor) + " < 1 compresses the context instead of extending it",
                    "check factor", ev);
        switch (type) {
            case "llama3" -> {
                List<String> missing = new ArrayList<>();
                for (String k : List.of("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"))
                    if (!p.path(k).isNumber()) missing.add(k);
                if (!missing.isEmpty()) {
                    c.add(Rules.ROPE_SCALING, ERROR, where + ": llama3 rope scaling without " + String.join(", ", missing)
                            + " (HF transformers needs all of factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)",
                            "add " + String.join(", ", missing) + " (Llama 3.1: 1.0, 4.0, 8192)", ev);
                    return;
                }
                double low = p.get("low_freq_factor").asDouble(), high = p.get("high_freq_factor").asDouble();
                if (!(high > low))
                    c.add(Rules.ROPE_SCALING, ERROR, where + ": high_freq_factor " + num(high) + " must exceed low_freq_factor "
                            + num(low) + " (the llama3 smoothing divides by their difference)", "fix the freq factors", ev);
                if (maxPos > 0 && maxPos <= original)
                    c.add(Rules.ROPE_SCALING, WARNING, where + ": max_position_embeddings " + maxPos + " <= original_max_position_embeddings "
                            + (long) original + ": the scaling extends nothing; one of the two is wrong", "check max_position_embeddings", ev);
            }
            case "yarn", "linear", "dynamic" -> {
                if (type.equals("yarn") && Double.isNaN(original))
                    c.add(Rules.ROPE_SCALING, WARNING, where + ": yarn without original_max_position_embeddings: HF transformers "
                                    + "then takes max_position_embeddings as the pre-training length, so the correction range and the "
                                    + "interpolation are computed against the extended context; others assume a base length",
                            "add original_max_position_embeddings (the pre-training context, e.g. 4096 for gpt-oss)", ev);
                if (!Double.isNaN(original) && maxPos > 0) {
                    double implied = maxPos / original;
                    if (Math.abs(implied - factor) > 1e-9 * factor)
                        c.add(Rules.ROPE_SCALING, WARNING, where + ": factor " + num(factor) + " but max_position_embeddings / "
                                        + "original_max_position_embeddings = " + maxPos + " / " + (long) original + " = " + num(implied)
                                        + (type.equals("yarn") ? "; HF transformers warns and uses the explicit factor, implementations "
                                        + "that derive it from the ratio scale differently" : "; implementations may derive either"),
                                "make factor = max_position_embeddings / original_max_position_embeddings", ev);
                }
            }
            case "longrope", "su" -> {
                if (Double.isNaN(original))
                    c.add(Rules.ROPE_SCALING, WARNING, where + ": longrope without original_max_position_embeddings: the "
                            + "long/short switch point and attention factor fall back to max_position_embeddings", "add original_max_position_embeddings", ev);
                else if (maxPos > 0 && maxPos < original)
                    c.add(Rules.ROPE_SCALING, WARNING, where + ": max_position_embeddings " + maxPos + " < original_max_position_embeddings "
                            + (long) original + ": long_factor can never apply", "check max_position_embeddings", ev);
            }
            default -> {
            }
        }
    }

    // ---------------------------------------------------------------- vocabulary

    private static void vocab(LintContext c) {
        int v = c.vocabSize();
        if (v > 0 && v % 64 != 0)
            c.add(Rules.VOCAB_64, INFO, "vocab_size " + v + " is not a multiple of 64: harmless; releases usually pad it "
                    + "(Phi-3: 32064) so the embedding / lm_head matmuls tile evenly on GPUs"
                    + "", null, "vocab_size", v, "next_multiple", (v + 63) / 64 * 64);
    }

    static String num(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }

    @SafeVarargs
    private static <T> T firstNonNull(T... xs) {
        for (T x : xs) if (x != null) return x;
        return null;
    }
}
