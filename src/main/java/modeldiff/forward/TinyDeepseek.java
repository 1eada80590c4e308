package modeldiff.forward;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.DType;
import modeldiff.model.SafeTensorsWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tiny deepseek_v3 releases for tests, written as HF saves them (config.json + one float32 safetensors file, expert
 * weights under their released per-expert names). {@link Dims} picks the sizes; every tensor is seeded random unless
 * the caller replaces it.
 */
public final class TinyDeepseek {
    private TinyDeepseek() {
    }

    /** Sizes; qLora 0 writes "q_lora_rank": null (a plain q_proj). */
    public record Dims(int hidden, int heads, int qLora, int kvLora, int nope, int rope, int v, int layers, int vocab, int ff,
                int experts, int topK, int moeFf, int nGroup, int topkGroup, int firstDense) {
        public int qk() {
            return nope + rope;
        }
    }

    public static final ObjectMapper JSON = new ObjectMapper();

    public static ObjectNode config(Dims d, boolean interleave, double eps) {
        ObjectNode c = JSON.createObjectNode();
        c.put("model_type", "deepseek_v3").put("hidden_size", d.hidden).put("intermediate_size", d.ff)
                .put("moe_intermediate_size", d.moeFf).put("num_hidden_layers", d.layers).put("num_attention_heads", d.heads)
                .put("num_key_value_heads", d.heads).put("n_shared_experts", 1).put("n_routed_experts", d.experts)
                .put("routed_scaling_factor", 2.5).put("kv_lora_rank", d.kvLora).put("qk_rope_head_dim", d.rope)
                .put("v_head_dim", d.v).put("qk_nope_head_dim", d.nope).put("n_group", d.nGroup).put("topk_group", d.topkGroup)
                .put("num_experts_per_tok", d.topK).put("first_k_dense_replace", d.firstDense).put("norm_topk_prob", true)
                .put("hidden_act", "silu").put("max_position_embeddings", 256).put("rms_norm_eps", eps)
                .put("rope_theta", 10000.0).put("rope_interleave", interleave).put("vocab_size", d.vocab)
                .put("tie_word_embeddings", false).put("attention_bias", false).put("bos_token_id", 0).put("eos_token_id", 1);
        if (d.qLora > 0) c.put("q_lora_rank", d.qLora);
        else c.putNull("q_lora_rank");
        c.putArray("architectures").add("DeepseekV3ForCausalLM");
        return c;
    }

    /** DeepSeek-V3's YaRN block (rope_scaling as its release writes it), with the given factor. */
    public static void yarn(ObjectNode c, double factor, int originalMax) {
        c.putObject("rope_scaling").put("type", "yarn").put("factor", factor).put("original_max_position_embeddings", originalMax)
                .put("beta_fast", 32).put("beta_slow", 1).put("mscale", 1.0).put("mscale_all_dim", 1.0);
    }

    /** Every tensor of the release and its shape, in the order HF registers them. */
    public static Map<String, long[]> shapes(Dims d) {
        Map<String, long[]> s = new LinkedHashMap<>();
        int h = d.hidden;
        s.put("model.embed_tokens.weight", new long[]{d.vocab, h});
        for (int i = 0; i < d.layers; i++) {
            String p = "model.layers." + i + ".";
            if (d.qLora > 0) {
                s.put(p + "self_attn.q_a_proj.weight", new long[]{d.qLora, h});
                s.put(p + "self_attn.q_a_layernorm.weight", new long[]{d.qLora});
                s.put(p + "self_attn.q_b_proj.weight", new long[]{(long) d.heads * d.qk(), d.qLora});
            } else {
                s.put(p + "self_attn.q_proj.weight", new long[]{(long) d.heads * d.qk(), h});
            }
            s.put(p + "self_attn.kv_a_proj_with_mqa.weight", new long[]{d.kvLora + d.rope, h});
            s.put(p + "self_attn.kv_a_layernorm.weight", new long[]{d.kvLora});
            s.put(p + "self_attn.kv_b_proj.weight", new long[]{(long) d.heads * (d.nope + d.v), d.kvLora});
            s.put(p + "self_attn.o_proj.weight", new long[]{h, (long) d.heads * d.v});
            if (i < d.firstDense) {
                s.put(p + "mlp.gate_proj.weight", new long[]{d.ff, h});
                s.put(p + "mlp.up_proj.weight", new long[]{d.ff, h});
                s.put(p + "mlp.down_proj.weight", new long[]{h, d.ff});
            } else {
                for (int e = 0; e < d.experts; e++) {
                    String x = p + "mlp.experts." + e + ".";
                    s.put(x + "gate_proj.weight", new long[]{d.moeFf, h});
                    s.put(x + "up_proj.weight", new long[]{d.moeFf, h});
                    s.put(x + "down_proj.weight", new long[]{h, d.moeFf});
                }
                s.put(p + "mlp.gate.weight", new long[]{d.experts, h});
                s.put(p + "mlp.gate.e_score_correction_bias", new long[]{d.experts});
                s.put(p + "mlp.shared_experts.gate_proj.weight", new long[]{d.moeFf, h});
                s.put(p + "mlp.shared_experts.up_proj.weight", new long[]{d.moeFf, h});
                s.put(p + "mlp.shared_experts.down_proj.weight", new long[]{h, d.moeFf});
            }
            s.put(p + "input_layernorm.weight", new long[]{h});
            s.put(p + "post_attention_layernorm.weight", new long[]{h});
        }
        s.put("model.norm.weight", new long[]{h});
        s.put("lm_head.weight", new long[]{d.vocab, h});
        return s;
    }

    /**
     * Seeded values: norm weights 1 ± 0.2, the correction bias ± 0.05, embeddings ± 1, other matrices uniform with
     * standard deviation 1/sqrt(fan-in) (activations stay of order one through the tiny model).
     */
    public static double[] random(String name, long[] shape, long seed) {
        int n = 1;
        for (long x : shape) n *= (int) x;
        SplittableRandom r = new SplittableRandom(seed ^ name.hashCode() * 0x9E3779B97F4A7C15L);
        double[] out = new double[n];
        boolean norm = name.endsWith("norm.weight");
        double half = norm ? 0.2 : name.endsWith("e_score_correction_bias") ? 0.05
                : name.contains("embed_tokens") ? 1.0 : Math.sqrt(3.0 / shape[shape.length - 1]);
        for (int i = 0; i < n; i++) out[i] = (norm ? 1 : 0) + (2 * r.nextDouble() - 1) * half;
        return out;
    }

    /** Writes config.json and model.safetensors (in {@code dtype}) into {@code dir}; returns it. */
    public static Path write(Path dir, ObjectNode config, Map<String, long[]> shapes, Map<String, double[]> values, DType dtype) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        shapes.forEach((name, shape) -> w.add(name, dtype, shape, values.get(name)));
        w.write(dir.resolve("model.safetensors"));
        return dir;
    }

    /** A random release of these sizes. */
    public static Path write(Path dir, ObjectNode config, Dims d, long seed) {
        Map<String, long[]> shapes = shapes(d);
        Map<String, double[]> values = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> values.put(name, random(name, shape, seed)));
        return write(dir, config, shapes, values, DType.F32);
    }
}
