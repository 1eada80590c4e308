package modeldiff.report;

import modeldiff.model.DType;
import modeldiff.model.SafeTensorsWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** A two-layer llama with random weights, written to a folder the way a release ships: config.json + safetensors. */
final class TinyModel {
    static final int HIDDEN = 16, LAYERS = 2, HEADS = 2, VOCAB = 32, FFN = 32;

    private TinyModel() {
    }

    /** {@code declaredDtype} goes into config.json verbatim, so tests can smuggle hostile strings through it. */
    static Path write(Path dir, String declaredDtype) {
        String config = """
                {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                 "hidden_size": %d, "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d,
                 "intermediate_size": %d, "vocab_size": %d, "hidden_act": "silu", "rms_norm_eps": 1e-5,
                 "rope_theta": 10000.0, "max_position_embeddings": 128, "tie_word_embeddings": false,
                 "bos_token_id": 1, "eos_token_id": 2, "dtype": %s}
                """.formatted(HIDDEN, LAYERS, HEADS, HEADS, FFN, VOCAB, jsonString(declaredDtype));
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), config);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Random rnd = new Random(42);
        SafeTensorsWriter w = new SafeTensorsWriter();
        add(w, rnd, "model.embed_tokens.weight", 1.0, VOCAB, HIDDEN);
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            norm(w, rnd, p + "input_layernorm.weight");
            add(w, rnd, p + "self_attn.q_proj.weight", 0.25, HIDDEN, HIDDEN);
            add(w, rnd, p + "self_attn.k_proj.weight", 0.25, HIDDEN, HIDDEN);
            add(w, rnd, p + "self_attn.v_proj.weight", 0.25, HIDDEN, HIDDEN);
            add(w, rnd, p + "self_attn.o_proj.weight", 0.25, HIDDEN, HIDDEN);
            norm(w, rnd, p + "post_attention_layernorm.weight");
            add(w, rnd, p + "mlp.gate_proj.weight", 0.25, FFN, HIDDEN);
            add(w, rnd, p + "mlp.up_proj.weight", 0.25, FFN, HIDDEN);
            add(w, rnd, p + "mlp.down_proj.weight", 0.18, HIDDEN, FFN);
        }
        norm(w, rnd, "model.norm.weight");
        add(w, rnd, "lm_head.weight", 0.25, VOCAB, HIDDEN);
        w.write(dir.resolve("model.safetensors"));
        return dir;
    }

    private static void add(SafeTensorsWriter w, Random rnd, String name, double scale, int rows, int cols) {
        double[] d = new double[rows * cols];
        for (int i = 0; i < d.length; i++) d[i] = scale * rnd.nextGaussian();
        w.add(name, DType.F32, new long[]{rows, cols}, d);
    }

    private static void norm(SafeTensorsWriter w, Random rnd, String name) {
        double[] d = new double[HIDDEN];
        for (int i = 0; i < d.length; i++) d[i] = 1 + 0.1 * rnd.nextGaussian();
        w.add(name, DType.F32, new long[]{HIDDEN}, d);
    }

    private static String jsonString(String s) {
        return new com.fasterxml.jackson.databind.node.TextNode(s).toString();
    }
}
