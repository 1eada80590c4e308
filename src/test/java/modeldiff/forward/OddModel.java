package modeldiff.forward;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.DType;
import modeldiff.synth.SyntheticModel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A synthesized Llama-family model whose sizes are no multiple of anything the kernels block by (hidden 200,
 * intermediate 333, 5 heads of 40 over 1 KV head, vocabulary 1001), written once per test JVM and deleted at exit.
 */
public final class OddModel {
    private static Path dir;

    private OddModel() {
    }

    public static synchronized Path get() {
        if (dir != null) return dir;
        try {
            Path tmp = Files.createTempDirectory("modeldiff-odd-");
            ObjectNode c = new ObjectMapper().createObjectNode();
            c.put("model_type", "llama").put("hidden_size", 200).put("intermediate_size", 333).put("num_hidden_layers", 2)
                    .put("num_attention_heads", 5).put("num_key_value_heads", 1).put("vocab_size", 1001)
                    .put("hidden_act", "silu").put("rms_norm_eps", 1e-5).put("rope_theta", 10000.0)
                    .put("max_position_embeddings", 512).put("tie_word_embeddings", false).put("bos_token_id", 1)
                    .put("eos_token_id", 2).put("initializer_range", 0.02);
            c.putArray("architectures").add("LlamaForCausalLM");
            SyntheticModel.write(c, "odd", "test", tmp.resolve("model"), 11, null, DType.BF16, false, 200_000, s -> { });
            dir = tmp.resolve("model");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try (var s = Files.walk(tmp)) {
                    s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                } catch (IOException ignored) {
                    // best effort
                }
            }));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
