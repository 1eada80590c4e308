package modeldiff.synth;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.cli.Main;
import modeldiff.model.DType;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticModelTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static ObjectNode config() {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("Qwen2ForCausalLM");
        c.put("hidden_size", 48).put("intermediate_size", 80).put("max_position_embeddings", 256).put("model_type", "qwen2")
                .put("num_attention_heads", 4).put("num_hidden_layers", 3).put("num_key_value_heads", 2)
                .put("rms_norm_eps", 1e-6).put("rope_theta", 10000.0).put("tie_word_embeddings", false)
                .put("torch_dtype", "bfloat16").put("vocab_size", 300).put("hidden_act", "silu").put("initializer_range", 0.02);
        return c;
    }

    /** HF's rule: tensors in state-dict order, a new shard when the next tensor would overflow, an index naming each. */
    @Test
    void shardsLikeSavePretrained(@TempDir Path tmp) throws IOException {
        long shard = 40_000;
        Path dir = tmp.resolve("m");
        SyntheticModel.Result r = SyntheticModel.write(config(), "test", "test", dir, 1, null, DType.BF16, false, shard, s -> { });
        assertTrue(r.shards() > 1);
        JsonNode index = JSON.readTree(dir.resolve("model.safetensors.index.json").toFile());
        assertEquals(r.bytes(), index.get("metadata").get("total_size").asLong());
        List<SyntheticModel.Tensor> order = SyntheticModel.stateDict(ModelConfig.load(dir));
        Map<String, Long> shardBytes = new LinkedHashMap<>();
        String previous = null;
        List<String> files = new ArrayList<>();
        for (SyntheticModel.Tensor t : order) {
            String file = index.get("weight_map").get(t.name()).asText();
            long bytes = t.count() * 2;
            if (!file.equals(previous)) {
                if (previous != null) assertTrue(shardBytes.get(previous) + bytes > shard, "shard " + previous + " closed too early");
                files.add(file);
                previous = file;
            }
            shardBytes.merge(file, bytes, Long::sum);
        }
        for (int i = 0; i < files.size(); i++)
            assertEquals(String.format("model-%05d-of-%05d.safetensors", i + 1, files.size()), files.get(i));
        for (Map.Entry<String, Long> e : shardBytes.entrySet())
            assertTrue(e.getValue() <= shard, e.getKey() + " holds " + e.getValue() + " bytes");
        Model m = Model.open(dir);                       // every tensor of the family present, shapes as the config implies
        assertEquals(3, m.config.numLayers);
        assertTrue(m.config.qkvBias);
        assertTrue(Files.readString(dir.resolve("config.json")).contains("\"hidden_size\": 48,"), "json.dumps layout");
    }

    @Test
    void bytesDependOnTheSeedOnly(@TempDir Path tmp) throws IOException {
        SyntheticModel.write(config(), "test", "test", tmp.resolve("a"), 7, 1, DType.BF16, false, SyntheticModel.SHARD_BYTES, s -> { });
        SyntheticModel.write(config(), "test", "test", tmp.resolve("b"), 7, 1, DType.BF16, false, SyntheticModel.SHARD_BYTES, s -> { });
        SyntheticModel.write(config(), "test", "test", tmp.resolve("c"), 8, 1, DType.BF16, false, SyntheticModel.SHARD_BYTES, s -> { });
        byte[] a = Files.readAllBytes(tmp.resolve("a/model.safetensors")), b = Files.readAllBytes(tmp.resolve("b/model.safetensors"));
        assertArrayEquals(a, b);
        assertFalse(java.util.Arrays.equals(a, Files.readAllBytes(tmp.resolve("c/model.safetensors"))));
        Model m = Model.open(tmp.resolve("a"));
        assertEquals(1, m.config.numLayers);
        TensorInfo q = m.layer(0).q().weight();
        double[] w = modeldiff.model.TensorStore.readDoubles(q, 0, q.elementCount());
        double sq = 0;
        for (double v : w) sq += v * v;
        assertEquals(0.02, Math.sqrt(sq / w.length), 0.004, "standard deviation is the config's initializer_range");
    }

    @Test
    void everyShapeIsARealConfigThatLoads(@TempDir Path tmp) throws IOException {
        for (String shape : Shapes.SOURCES.keySet()) {
            Path d = Files.createDirectories(tmp.resolve(shape));
            Files.writeString(d.resolve("config.json"), Shapes.configJson(shape));
            ModelConfig c = ModelConfig.load(d);
            assertFalse(SyntheticModel.stateDict(c).isEmpty(), shape);
        }
    }

    @Test
    void unknownShapeIsBadInput(@TempDir Path tmp) {
        assertEquals(Main.EXIT_BAD_INPUT, Main.execute("synth", "--shape", "llama9-1t", "--out", tmp.resolve("x").toString()));
        assertFalse(Files.exists(tmp.resolve("x")));
    }
}
