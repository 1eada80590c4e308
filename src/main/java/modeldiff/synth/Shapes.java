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
