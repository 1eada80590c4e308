package modeldiff.demo;

import modeldiff.model.BadInputException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The model shipped inside modeldiff (a small Gemma-family model trained briefly on English text by
 * reference-impls/train_demo.py; byte tokens, BOS = 256) and HF transformers traces of it, clean and with known bugs
 * planted. Extracted to a folder because releases are read from folders.
 */
public final class DemoAssets {
    static final String RES = "/modeldiff/demo/";
    public static final List<String> MODEL_FILES = List.of("config.json", "generation_config.json", "model.safetensors", "TRAINING.txt",
            "tokenizer.json", "tokenizer_config.json");
    /** The demo's tokenizer (reference-impls/demo_tokenizer.py): byte b is id b, BOS = 256 first. */
    public static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json");
    public static final String CLEAN = "hf-bfloat16.safetensors";
    public static final String CLEAN_FP32 = "hf-float32.safetensors";
    public static final String GELU_BUG = "planted-act.gelu_exact-bfloat16.safetensors";
    public static final String NORM_BUG = "planted-norm.cast_before_weight-bfloat16.safetensors";
    public static final String LONG_CLEAN = "hf-bfloat16-off8150.safetensors";
    public static final String ROPE_BUG = "planted-rope.bf16_angles-bfloat16-off8150.safetensors";
    public static final List<String> TRACES = List.of(CLEAN, CLEAN_FP32, GELU_BUG, NORM_BUG, LONG_CLEAN, ROPE_BUG);

    private DemoAssets() {
    }

    /** Writes DIR/model/… and DIR/traces/…; returns DIR. */
    public static Path extract(Path dir) throws IOException {
        Files.createDirectories(dir.resolve("model"));
        Files.createDirectories(dir.resolve("traces"));
        for (String f : MODEL_FILES) copy("model/" + f, dir.resolve("model").resolve(f));
        for (String f : TRACES) copy("traces/" + f, dir.resolve("traces").resolve(f));
        return dir;
    }

    /** Writes only the demo's tokenizer files into DIR. */
    public static Path writeTokenizer(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : TOKENIZER_FILES) copy("model/" + f, dir.resolve(f));
        return dir;
    }

    private static void copy(String resource, Path to) throws IOException {
        try (InputStream in = DemoAssets.class.getResourceAsStream(RES + resource)) {
            if (in == null) throw new BadInputException("demo resource " + resource + " is missing from the build");
            Files.copy(in, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** The demo's tokens are bytes (plus BOS = 256): show them as text. */
    public static String asText(int[] tokens) {
        StringBuilder sb = new StringBuilder();
        for (int t : tokens) if (t < 256) sb.append((char) t);
        return sb.toString();
    }
}
