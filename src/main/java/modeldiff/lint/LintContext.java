package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Everything the rules look at, each part possibly absent: the raw config.json (rules fall back to it when the
 * normalised {@link ModelConfig} cannot be built), the tensor headers, the family's view of which tensors it reads,
 * the optional tokenizer / generation configs and tokens, and the row scans of embedding / lm_head.
 */
final class LintContext {
    final Path dir;
    final LintOptions options;
    final List<Finding> findings = new ArrayList<>();

    JsonNode raw;                 // config.json as JSON, or null when unreadable
    Family family;                // from raw model_type, or null
    ModelConfig config;           // normalised, or null when ModelConfig.load failed
    TensorStore store;            // headers, or null when unreadable
    Model.Inspection inspection;  // needs config + store
    JsonNode tokenizerConfig, generationConfig;

    TensorScan.MatrixStats embeddingStats, lmHeadStats;   // lmHeadStats null when tied / absent
    /** Embedding rows judged untrained (weights.untrained_rows), for input.untrained_token. */
    final Set<Integer> untrainedEmbeddingRows = new LinkedHashSet<>();
    /** Tensors a config rule already explained, so weights.shape_mismatch does not repeat it. */
    final Set<String> explainedTensors = new LinkedHashSet<>();

    LintContext(Path dir, LintOptions options) {
        this.dir = dir;
        this.options = options;
    }

    void add(String rule, Severity severity, String message, String fix, Object... evidence) {
        findings.add(new Finding(rule, severity, message, Finding.evidence(evidence), fix));
    }

    // ---- values with the normalised config first, the raw JSON (plus family defaults) as fallback

    int vocabSize() {
        if (config != null) return config.vocabSize;
        return rawInt("vocab_size", -1);
    }

    int hiddenSize() {
        if (config != null) return config.hiddenSize;
        int v = rawInt("hidden_size", -1);
        return v > 0 ? v : rawInt("n_embd", -1);
    }

    int numHeads() {
        if (config != null) return config.numHeads;
        int v = rawInt("num_attention_heads", -1);
        return v > 0 ? v : rawInt("n_head", -1);
    }

    int maxPositions() {
        if (config != null) return config.maxPositionEmbeddings;
        String key = family != null && family.layout == Family.Layout.GPT2 ? "n_positions" : "max_position_embeddings";
        int v = rawInt(key, -1);
        if (v > 0) return v;
        return family != null && family.defaults.get(key) instanceof Number n ? n.intValue() : 0;
    }

    List<Integer> tokenIds(String key) {
        if (config != null) {
            return switch (key) {
                case "bos_token_id" -> config.bosTokenIds;
                case "eos_token_id" -> config.eosTokenIds;
                case "pad_token_id" -> config.padTokenIds;
                default -> throw new IllegalArgumentException(key);
            };
        }
        if (raw != null && raw.has(key)) return ids(raw.get(key));
        List<Integer> out = new ArrayList<>();
        if (family != null && family.defaults.get(key) instanceof Number n) out.add(n.intValue());
        return out;
    }

    int rawInt(String key, int fallback) {
        JsonNode n = raw == null ? null : raw.get(key);
        return n != null && n.isIntegralNumber() && n.canConvertToInt() ? n.asInt() : fallback;
    }

    /** Token ids from a JSON int or list; anything else gives no ids (the loader reports malformed values). */
    static List<Integer> ids(JsonNode n) {
        List<Integer> out = new ArrayList<>();
        if (n == null || n.isNull()) return out;
        if (n.isIntegralNumber() && n.canConvertToInt()) out.add(n.asInt());
        else if (n.isArray()) for (JsonNode e : n) if (e.isIntegralNumber() && e.canConvertToInt()) out.add(e.asInt());
        return out;
    }

    static String text(JsonNode root, String key) {
        JsonNode n = root == null ? null : root.get(key);
        return n != null && n.isTextual() ? n.asText() : null;
    }

    // ---- tensors

    TensorInfo tensor(String name) {
        return store == null ? null : store.tensors().get(name);
    }

    /** The first of the names present in the checkpoint, or null. */
    TensorInfo firstTensor(String... names) {
        for (String n : names) {
            TensorInfo t = tensor(n);
            if (t != null) return t;
        }
        return null;
    }

    /** Name prefix of the decoder layers as stored ("model." or ""; GPT-2 "transformer." or ""). */
    String layerPrefix() {
        boolean gpt2 = family != null && family.layout == Family.Layout.GPT2;
        String base = gpt2 ? "transformer." : "model.";
        String probe = gpt2 ? "h.0.ln_1.weight" : "layers.0.input_layernorm.weight";
        return tensor(base + probe) != null || tensor(probe) == null ? base : "";
    }

    <T> List<T> cap(List<T> all) {
        return all.size() <= options.maxListed() ? all : all.subList(0, options.maxListed());
    }
}
