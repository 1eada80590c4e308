package modeldiff.model;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * config.json normalisation on hostile input. Invariant: parses or throws {@link BadInputException}, one line.
 * {@link #rawJson} mutates bytes (the seed inputs are real configs); {@link #mutatedConfig} starts from one of the
 * fixture configs and replaces keys with values of every JSON type, which reaches far more of the normalisation
 * than byte flips that mostly break the JSON syntax.
 */
class ConfigFuzzTest {
    static final Path NAME = Path.of("fuzz/config.json");
    static final List<ObjectNode> SEEDS = new ArrayList<>();
    static final List<String> KEYS;

    static {
        ObjectMapper om = new ObjectMapper();
        TreeSet<String> keys = new TreeSet<>();
        try (Stream<Path> s = Files.list(Path.of("src/test/resources/fixtures"))) {
            for (Path dir : s.sorted().toList()) {
                Path c = dir.resolve("model/config.json");
                if (!Files.isRegularFile(c)) continue;
                ObjectNode n = (ObjectNode) om.readTree(c.toFile());
                SEEDS.add(n);
                n.fieldNames().forEachRemaining(keys::add);
                for (String nested : List.of("rope_parameters", "rope_scaling"))
                    if (n.get(nested) instanceof ObjectNode o) o.fieldNames().forEachRemaining(k -> keys.add(nested + "." + k));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        keys.addAll(List.of("head_dim", "layer_types", "sliding_window", "use_sliding_window", "max_window_layers",
                "sliding_window_pattern", "query_pre_attn_scalar", "partial_rotary_factor", "rope_local_base_freq",
                "rope_scaling.rope_type", "rope_scaling.factor", "rope_scaling.short_factor", "rope_scaling.long_factor",
                "rope_parameters.full_attention", "rope_parameters.sliding_attention", "n_inner", "n_embd",
                "scale_attn_by_inverse_layer_idx", "attn_logit_softcapping", "final_logit_softcapping"));
        KEYS = List.copyOf(keys);
    }

    @FuzzTest
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void rawJson(byte[] json) {
        check(json);
    }

    @FuzzTest
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void mutatedConfig(FuzzedDataProvider data) {
        ObjectNode c = SEEDS.get(data.consumeInt(0, SEEDS.size() - 1)).deepCopy();
        int edits = data.consumeInt(1, 6);
        for (int i = 0; i < edits && data.remainingBytes() > 0; i++) {
            String key = KEYS.get(data.consumeInt(0, KEYS.size() - 1));
            ObjectNode target = c;
            int dot = key.indexOf('.');
            if (dot > 0) {
                String outer = key.substring(0, dot);
                if (!(c.get(outer) instanceof ObjectNode)) c.set(outer, JsonNodeFactory.instance.objectNode());
                target = (ObjectNode) c.get(outer);
                key = key.substring(dot + 1);
            }
            if (data.consumeInt(0, 7) == 0) target.remove(key);
            else target.set(key, value(data, 0));
        }
        check(c.toString().getBytes(StandardCharsets.UTF_8));
    }

    static JsonNode value(FuzzedDataProvider d, int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        switch (d.consumeInt(0, depth > 2 ? 6 : 8)) {
            case 0:
                return f.numberNode(d.pickValue(new int[]{0, 1, -1, 2, 3, 4, 7, 8, 16, 64, 256, 65536, Integer.MAX_VALUE, Integer.MIN_VALUE}));
            case 1:
                return f.numberNode(d.consumeInt());
            case 2:
                return f.numberNode(d.consumeLong());
            case 3:
                return f.numberNode(d.pickValue(new double[]{0.0, -0.0, 0.5, 1.0, 1.5, 1e-6, -1e-5, 1e300, -1e300, 10000.0, Double.MIN_VALUE}));
            case 4:
                return f.textNode(d.pickValue(new String[]{"silu", "gelu", "llama3", "yarn", "longrope", "linear", "dynamic",
                        "default", "su", "sliding_attention", "full_attention", "float32", "bfloat16", "", "<script>"}));
            case 5:
                return f.textNode(d.consumeString(12));
            case 6:
                return d.consumeBoolean() ? f.booleanNode(d.consumeBoolean()) : f.nullNode();
            case 7: {
                ArrayNode a = f.arrayNode();
                int n = d.consumeInt(0, 8);
                for (int i = 0; i < n; i++) a.add(value(d, depth + 1));
                return a;
            }
            default: {
                ObjectNode o = f.objectNode();
                int n = d.consumeInt(0, 4);
                for (int i = 0; i < n; i++)
                    o.set(d.pickValue(new String[]{"rope_type", "type", "factor", "rope_theta", "original_max_position_embeddings",
                            "low_freq_factor", "high_freq_factor", "short_factor", "long_factor", "partial_rotary_factor",
                            "beta_fast", "beta_slow", "mscale", "attention_factor", "truncate"}), value(d, depth + 1));
                return o;
            }
        }
    }

    static void check(byte[] json) {
        ModelConfig c;
        try {
            c = ModelConfig.parse(NAME, json);
        } catch (BadInputException e) {
            FuzzInvariants.oneLine(e);
            return;
        }
        // A config that parses is usable: sizes positive, one layer spec per layer, every dimension an int.
        if (c.hiddenSize <= 0 || c.numLayers <= 0 || c.numHeads <= 0 || c.numKvHeads <= 0 || c.headDim <= 0
                || c.vocabSize <= 0 || c.intermediateSize <= 0)
            throw new AssertionError("non-positive size accepted");
        if (c.layers.size() != c.numLayers) throw new AssertionError("layer specs");
        if ((long) c.qDim() + 2L * c.kvDim() > Integer.MAX_VALUE) throw new AssertionError("dimension overflow accepted");
        for (LayerSpec l : c.layers)
            if (l.rope() != null && !(l.rope().theta() > 0)) throw new AssertionError("rope theta " + l.rope().theta());
    }
}
