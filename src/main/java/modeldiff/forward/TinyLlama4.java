package modeldiff.forward;

import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.DType;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Tiny llama4_text releases for tests, written as HF's Llama4ForCausalLM saves them: config.json and one float32
 * safetensors file, experts fused ({@code feed_forward.experts.gate_up_proj} [E, H, 2·ff], {@code down_proj} [E, ff, H])
 * with a router and a shared expert on the MoE layers and {@code feed_forward.{gate,up,down}_proj} of
 * intermediate_size_mlp on the dense ones.
 */
public final class TinyLlama4 {
    private TinyLlama4() {
    }

    /**
     * Sizes and the layer plan: layers {@code moeStep − 1, 2·moeStep − 1, …} route (interleave_moe_layer_step),
     * layers with (i + 1) % nopeInterval == 0 are NoPE (no_rope_layer_interval).
     */
    public record Dims(int hidden, int heads, int kvHeads, int headDim, int layers, int vocab, int ffMlp, int experts, int topK,
                int ff, int moeStep, int nopeInterval) {
        public boolean moe(int i) {
            return (i + 1) % moeStep == 0;
        }
    }

    /** 4 layers: 0 RoPE dense, 1 RoPE MoE, 2 NoPE dense, 3 RoPE MoE; 4 experts, top-1. */
    public static final Dims SMALL = new Dims(64, 4, 2, 16, 4, 40, 96, 4, 1, 32, 2, 3);

    /**
     * The config: chunks of {@code chunk} positions on the RoPE layers, temperature tuning with floor_scale
     * {@code floor} and attn_scale 0.5, q/k L2 norm, llama3 RoPE scaling (factor 8, original 8 positions) so it
     * changes the tiny model's frequencies.
     */
    public static ObjectNode config(Dims d, int chunk, int floor) {
        ObjectNode c = TinyDeepseek.JSON.createObjectNode();
        c.put("model_type", "llama4_text").put("hidden_size", d.hidden).put("intermediate_size", d.ff)
                .put("intermediate_size_mlp", d.ffMlp).put("num_hidden_layers", d.layers).put("num_attention_heads", d.heads)
                .put("num_key_value_heads", d.kvHeads).put("head_dim", d.headDim).put("vocab_size", d.vocab)
                .put("num_local_experts", d.experts).put("num_experts_per_tok", d.topK)
                .put("interleave_moe_layer_step", d.moeStep).put("no_rope_layer_interval", d.nopeInterval)
                .put("attention_chunk_size", chunk).put("attn_temperature_tuning", true).put("floor_scale", floor)
                .put("attn_scale", 0.5).put("use_qk_norm", true).put("rms_norm_eps", 1e-5).put("hidden_act", "silu")
                .put("rope_theta", 10000.0).put("max_position_embeddings", 256).put("tie_word_embeddings", false)
                .put("bos_token_id", 0).put("eos_token_id", 1);
        c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8);
        c.putArray("architectures").add("Llama4ForCausalLM");
        return c;
    }

    public static Map<String, long[]> shapes(Dims d) {
        Map<String, long[]> s = new LinkedHashMap<>();
        int h = d.hidden;
        long qd = (long) d.heads * d.headDim, kvd = (long) d.kvHeads * d.headDim;
        s.put("model.embed_tokens.weight", new long[]{d.vocab, h});
        for (int i = 0; i < d.layers; i++) {
            String p = "model.layers." + i + ".";
            s.put(p + "self_attn.q_proj.weight", new long[]{qd, h});
            s.put(p + "self_attn.k_proj.weight", new long[]{kvd, h});
            s.put(p + "self_attn.v_proj.weight", new long[]{kvd, h});
            s.put(p + "self_attn.o_proj.weight", new long[]{h, qd});
            String f = p + "feed_forward.";
            if (d.moe(i)) {
                s.put(f + "router.weight", new long[]{d.experts, h});
                s.put(f + "experts.gate_up_proj", new long[]{d.experts, h, 2L * d.ff});
                s.put(f + "experts.down_proj", new long[]{d.experts, d.ff, h});
                s.put(f + "shared_expert.gate_proj.weight", new long[]{d.ff, h});
                s.put(f + "shared_expert.up_proj.weight", new long[]{d.ff, h});
                s.put(f + "shared_expert.down_proj.weight", new long[]{h, d.ff});
            } else {
                s.put(f + "gate_proj.weight", new long[]{d.ffMlp, h});
                s.put(f + "up_proj.weight", new long[]{d.ffMlp, h});
                s.put(f + "down_proj.weight", new long[]{h, d.ffMlp});
            }
            s.put(p + "input_layernorm.weight", new long[]{h});
            s.put(p + "post_attention_layernorm.weight", new long[]{h});
        }
        s.put("model.norm.weight", new long[]{h});
        s.put("lm_head.weight", new long[]{d.vocab, h});
        return s;
    }

    /** Seeded values as TinyDeepseek draws them; the fused experts scaled by their fan-in (H for gate_up, ff for down). */
    public static Map<String, double[]> values(Dims d, long seed) {
        Map<String, double[]> v = new LinkedHashMap<>();
        shapes(d).forEach((name, shape) -> {
            long[] fan = name.endsWith("experts.gate_up_proj") ? new long[]{shape[1]}
                    : name.endsWith("experts.down_proj") ? new long[]{shape[1]} : shape;
            double[] r = TinyDeepseek.random(name, fan, seed);
            if (fan != shape) {   // draw the whole tensor with the fan-in's scale
                int n = 1;
                for (long x : shape) n *= (int) x;
                java.util.SplittableRandom g = new java.util.SplittableRandom(seed ^ name.hashCode());
                double half = Math.sqrt(3.0 / fan[0]);
                r = new double[n];
                for (int i = 0; i < n; i++) r[i] = (2 * g.nextDouble() - 1) * half;
            }
            v.put(name, r);
        });
        return v;
    }

    public static Path write(Path dir, ObjectNode config, Dims d, long seed) {
        return TinyDeepseek.write(dir, config, shapes(d), values(d, seed), DType.F32);
    }
}
