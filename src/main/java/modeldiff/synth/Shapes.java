package modeldiff.synth;

import modeldiff.model.BadInputException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Real model shapes: each one is the config.json of a published release, kept verbatim under
 * src/main/resources/modeldiff/shapes/NAME.json, so a synthesized model has exactly that release's architecture.
 */
public final class Shapes {
    private Shapes() {
    }

    /** Shape name → the Hugging Face repository whose config.json it reproduces. */
    public static final Map<String, String> SOURCES = sources();

    private static Map<String, String> sources() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0");
        m.put("gemma-2b", "google/gemma-2b");
        m.put("llama2-7b", "meta-llama/Llama-2-7b-hf");
        m.put("llama2-13b", "meta-llama/Llama-2-13b-hf");
        m.put("llama3-8b", "meta-llama/Meta-Llama-3-8B");
        m.put("mistral-7b", "mistralai/Mistral-7B-v0.1");
        // Llama-3-70B (issue #18's multi-GPU benchmark): llama3-8b.json's keys and values (the same release, same
        // transformers version) with the 70B dimensions: hidden 8192, 80 layers, 64 / 8 heads, intermediate 28672,
        // vocabulary 128256, untied (the 70B table of https://github.com/vulkomilev/oumi/blob/main/configs/recipes/llama3_1/README.md;
        // a Meta-Llama-3-70B-Instruct config.json quoted in a public repository has these numbers and 8192 positions,
        // rope_theta 500000, no rope_scaling, eos_token_id 128009, the instruct model's). Not a byte copy of the
        // release's file: huggingface.co is not reachable here.
        m.put("llama3-70b", "meta-llama/Meta-Llama-3-70B");
        // MoE shapes. Their config.json (https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json,
        // https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json) was read from copies on GitHub, since
        // huggingface.co is not reachable here: gpt-oss-20b's as quoted verbatim in circuit-tracer's gpt-oss test (its
        // added _name_or_path dropped), Qwen3-30B-A3B's from a collection of Qwen release configs; both agree with the
        // published model cards' numbers (24 layers / 32 experts / top-4; 48 layers / 128 experts / top-8).
        // gpt-oss's quantization_config (MXFP4) is kept here and dropped by synth, which writes bf16 experts.
        m.put("gpt-oss-20b", "openai/gpt-oss-20b");
        m.put("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B");
        return java.util.Collections.unmodifiableMap(m);
    }

    public static String configJson(String shape) {
        if (!SOURCES.containsKey(shape))
            throw new BadInputException("unknown shape '" + shape + "'; known: " + String.join(", ", SOURCES.keySet()));
        try (InputStream in = Shapes.class.getResourceAsStream("/modeldiff/shapes/" + shape + ".json")) {
            if (in == null) throw new IllegalStateException("shape resource missing: " + shape);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
