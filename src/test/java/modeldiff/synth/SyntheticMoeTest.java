package modeldiff.synth;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.compare.Metrics;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.DType;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorInfo;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The MoE shapes gpt-oss-20b and qwen3-30b-a3b: their configs read as the published ones say (numbers typed from the
 * releases' config.json, not from the code), the state dict is exactly HF's parameter names and shapes
 * (modeling_gpt_oss.py, modeling_qwen3_moe.py), a small written model loads and its lowp:fp32 pass stays within fp32
 * noise (-6.0, the bound HfParityTest holds the dense fixtures' float32 runs to) of the float64 reference.
 */
class SyntheticMoeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ForwardInput INPUT = new ForwardInput(new int[]{1, 5, 9, 30, 2, 17}, 0);

    static ObjectNode shape(String name) throws IOException {
        return (ObjectNode) JSON.readTree(Shapes.configJson(name));
    }

    private static ModelConfig load(Path dir, ObjectNode config) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toString());
        return ModelConfig.load(dir);
    }

    private static Map<String, long[]> stateDict(ModelConfig c) {
        Map<String, long[]> m = new TreeMap<>();
        for (SyntheticModel.Tensor t : SyntheticModel.stateDict(c)) assertNull(m.put(t.name(), t.shape()), "twice: " + t.name());
        return m;
    }

    private static void assertShapes(Map<String, long[]> expected, Map<String, long[]> actual) {
        assertEquals(expected.keySet(), actual.keySet());
        expected.forEach((k, v) -> assertArrayEquals(v, actual.get(k), k + ": " + Arrays.toString(actual.get(k))));
    }

    private static long bytes(Map<String, long[]> sd) {
        long n = 0;
        for (long[] s : sd.values()) n += 2 * Arrays.stream(s).reduce(1, (a, b) -> a * b);
        return n;
    }

    @Test
    void gptOss20bIsThePublishedShape(@TempDir Path tmp) throws IOException {
        ModelConfig c = load(tmp.resolve("full"), shape("gpt-oss-20b"));
        assertSame(Family.GPT_OSS, c.family);
        assertEquals(24, c.numLayers);
        assertEquals(2880, c.hiddenSize);
        assertEquals(64, c.numHeads);
        assertEquals(8, c.numKvHeads);
        assertEquals(64, c.headDim);
        assertEquals(201088, c.vocabSize);
        assertEquals(32, c.moe.numExperts);
        assertEquals(4, c.moe.topK);
        assertEquals(2880, c.moe.expertSize);
        System.out.printf("gpt-oss-20b bf16: %.2f GB%n", bytes(stateDict(c)) / 1e9);

        ObjectNode one = shape("gpt-oss-20b");
        one.put("num_hidden_layers", 1);
        one.putArray("layer_types").add("sliding_attention");
        Map<String, long[]> expected = new TreeMap<>();
        expected.put("model.embed_tokens.weight", new long[]{201088, 2880});
        expected.put("lm_head.weight", new long[]{201088, 2880});
        expected.put("model.norm.weight", new long[]{2880});
        String p = "model.layers.0.";
        expected.put(p + "input_layernorm.weight", new long[]{2880});
        expected.put(p + "post_attention_layernorm.weight", new long[]{2880});
        expected.put(p + "self_attn.q_proj.weight", new long[]{4096, 2880});
        expected.put(p + "self_attn.q_proj.bias", new long[]{4096});
        expected.put(p + "self_attn.k_proj.weight", new long[]{512, 2880});
        expected.put(p + "self_attn.k_proj.bias", new long[]{512});
        expected.put(p + "self_attn.v_proj.weight", new long[]{512, 2880});
        expected.put(p + "self_attn.v_proj.bias", new long[]{512});
        expected.put(p + "self_attn.o_proj.weight", new long[]{2880, 4096});
        expected.put(p + "self_attn.o_proj.bias", new long[]{2880});
        expected.put(p + "self_attn.sinks", new long[]{64});
        expected.put(p + "mlp.router.weight", new long[]{32, 2880});
        expected.put(p + "mlp.router.bias", new long[]{32});
        expected.put(p + "mlp.experts.gate_up_proj", new long[]{32, 2880, 5760});
        expected.put(p + "mlp.experts.gate_up_proj_bias", new long[]{32, 5760});
        expected.put(p + "mlp.experts.down_proj", new long[]{32, 2880, 2880});
        expected.put(p + "mlp.experts.down_proj_bias", new long[]{32, 2880});
        assertShapes(expected, stateDict(load(tmp.resolve("one"), one)));
    }

    @Test
    void qwen3_30bA3bIsThePublishedShape(@TempDir Path tmp) throws IOException {
        ModelConfig c = load(tmp.resolve("full"), shape("qwen3-30b-a3b"));
        assertSame(Family.QWEN3_MOE, c.family);
        assertEquals(48, c.numLayers);
        assertEquals(2048, c.hiddenSize);
        assertEquals(32, c.numHeads);
        assertEquals(4, c.numKvHeads);
        assertEquals(128, c.headDim);
        assertEquals(151936, c.vocabSize);
        assertEquals(128, c.moe.numExperts);
        assertEquals(8, c.moe.topK);
        assertEquals(768, c.moe.expertSize);
        assertTrue(c.moe.renormalize, "norm_topk_prob true");
        for (int i = 0; i < 48; i++) assertTrue(c.moe.sparse(i), "decoder_sparse_step 1, no mlp_only_layers: layer " + i);
        System.out.printf("qwen3-30b-a3b bf16: %.2f GB%n", bytes(stateDict(c)) / 1e9);

        ObjectNode one = shape("qwen3-30b-a3b");
        one.put("num_hidden_layers", 1);
        Map<String, long[]> expected = new TreeMap<>();
        expected.put("model.embed_tokens.weight", new long[]{151936, 2048});
        expected.put("lm_head.weight", new long[]{151936, 2048});
        expected.put("model.norm.weight", new long[]{2048});
        String p = "model.layers.0.";
        expected.put(p + "input_layernorm.weight", new long[]{2048});
        expected.put(p + "post_attention_layernorm.weight", new long[]{2048});
        expected.put(p + "self_attn.q_proj.weight", new long[]{4096, 2048});
        expected.put(p + "self_attn.k_proj.weight", new long[]{512, 2048});
        expected.put(p + "self_attn.v_proj.weight", new long[]{512, 2048});
        expected.put(p + "self_attn.o_proj.weight", new long[]{2048, 4096});
        expected.put(p + "self_attn.q_norm.weight", new long[]{128});
        expected.put(p + "self_attn.k_norm.weight", new long[]{128});
        expected.put(p + "mlp.gate.weight", new long[]{128, 2048});
        for (int e = 0; e < 128; e++) {
            expected.put(p + "mlp.experts." + e + ".gate_proj.weight", new long[]{768, 2048});
            expected.put(p + "mlp.experts." + e + ".up_proj.weight", new long[]{768, 2048});
            expected.put(p + "mlp.experts." + e + ".down_proj.weight", new long[]{2048, 768});
        }
        assertShapes(expected, stateDict(load(tmp.resolve("one"), one)));
    }

    /** The published config with small dims (experts, top-k, layer types, rope, norms as released). */
    static ObjectNode small(String name) throws IOException {
        ObjectNode c = shape(name);
        c.put("hidden_size", 64).put("num_attention_heads", 4).put("num_key_value_heads", 2).put("head_dim", 16)
                .put("vocab_size", 256);
        if (name.equals("gpt-oss-20b")) c.put("intermediate_size", 32).put("num_local_experts", 8);
        else c.put("moe_intermediate_size", 32).put("num_experts", 16);
        return c;
    }

    private static void writesLoadsAndAgrees(String name, Path tmp) throws IOException {
        Path dir = tmp.resolve(name);
        SyntheticModel.Result r = SyntheticModel.write(small(name), name, name, dir, 3, 2, DType.BF16, false,
                SyntheticModel.SHARD_BYTES, s -> { });
        Model m = Model.open(dir);
        assertEquals(2, m.config.numLayers);
        assertFalse(Files.readString(dir.resolve("config.json")).contains("quantization_config"));
        Map<String, long[]> written = new TreeMap<>();
        for (Map.Entry<String, TensorInfo> e : m.store.storedTensors().entrySet()) {
            assertEquals(DType.BF16, e.getValue().dtype(), e.getKey());
            written.put(e.getKey(), e.getValue().shape());
        }
        assertShapes(stateDict(m.config), written);
        assertEquals(r.tensors(), written.size());
        for (int i = 0; i < 2; i++) assertEquals(m.config.moe.numExperts, m.moe(i).count(), "layer " + i);
        Trace ref = new ReferencePass().run(m, INPUT, ProbeLevel.ALL);
        Trace lowp = new LowpPass(Precision.FP32, Fixes.NONE).run(m, INPUT, ProbeLevel.ALL);
        assertEquals(ref.probeNames(), lowp.probeNames());
        assertTrue(ref.has("layers.1.router_logits") && ref.has("layers.1.experts"), "routed layers traced");
        double w = Double.NEGATIVE_INFINITY;
        for (String p : ref.probeNames()) {
            if (p.endsWith(".experts")) {   // ids: equal or not
                assertEquals(Arrays.toString(ref.probe(p).data()), Arrays.toString(lowp.probe(p).data()), p);
                continue;
            }
            w = Math.max(w, Metrics.logL2(ref.probe(p).data(), lowp.probe(p).data()));
        }
        System.out.printf("%s (small, 2 layers): lowp:fp32 vs reference worst probe %.2f%n", name, w);
        assertTrue(w <= -6.0, name + ": worst probe " + w);
    }

    @Test
    void gptOssWritesLoadsAndAgrees(@TempDir Path tmp) throws IOException {
        writesLoadsAndAgrees("gpt-oss-20b", tmp);
        ObjectNode cfg = (ObjectNode) JSON.readTree(tmp.resolve("gpt-oss-20b/config.json").toFile());
        assertEquals("[\"sliding_attention\",\"full_attention\"]", cfg.get("layer_types").toString(), "one type per layer written");
    }

    @Test
    void qwen3MoeWritesLoadsAndAgrees(@TempDir Path tmp) throws IOException {
        writesLoadsAndAgrees("qwen3-30b-a3b", tmp);
    }

    @Test
    void bytesDependOnTheSeedOnly(@TempDir Path tmp) throws IOException {
        for (String name : new String[]{"gpt-oss-20b", "qwen3-30b-a3b"}) {
            for (String d : new String[]{"a", "b"})
                SyntheticModel.write(small(name), name, name, tmp.resolve(name + d), 11, 1, DType.BF16, false,
                        SyntheticModel.SHARD_BYTES, s -> { });
            SyntheticModel.write(small(name), name, name, tmp.resolve(name + "c"), 12, 1, DType.BF16, false,
                    SyntheticModel.SHARD_BYTES, s -> { });
            byte[] a = Files.readAllBytes(tmp.resolve(name + "a/model.safetensors"));
            assertArrayEquals(a, Files.readAllBytes(tmp.resolve(name + "b/model.safetensors")), name);
            assertFalse(Arrays.equals(a, Files.readAllBytes(tmp.resolve(name + "c/model.safetensors"))), name);
        }
    }
}
