package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorStore;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static modeldiff.lint.Severity.ERROR;

/**
 * Checks a model release for the mistakes that make implementations disagree: config values (special tokens, sliding
 * window, activation, head_dim, RoPE scaling, tying), weights (untrained rows, NaN/Inf, dtype, missing / unexpected
 * tensors), tokenizer / generation configs and the tokens a run would use. Reads the model folder only (never
 * writes it): config JSON, safetensors headers, the embedding / lm_head matrices, and, unless
 * {@link LintOptions#nonfinite()} is off, every tensor once, streamed.
 *
 * A release that cannot be loaded is a finding ({@code config.load_failed}, {@code weights.load_failed}), not an
 * exception: lint still runs every rule it can on what is readable. Only a path that is not a model folder at all
 * throws {@link BadInputException}.
 */
public final class Linter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Linter() {
    }

    public static LintReport lint(Path dir, LintOptions options) {
        long t0 = System.nanoTime();
        if (!Files.isDirectory(dir)) throw BadInputException.at(dir, "model folder", "not a directory");
        if (!Files.exists(dir.resolve("config.json")) && !hasSafetensors(dir))
            throw BadInputException.at(dir, "model folder", "no config.json and no safetensors: not a model release");
        LintContext c = new LintContext(dir, options);
        load(c);
        ConfigRules.run(c);
        WeightRules.run(c);
        TokenizerRules.run(c);
        InputRules.run(c);
        List<Finding> sorted = c.findings.stream()
                .sorted(Comparator.comparing(Finding::severity).reversed().thenComparing(Finding::rule))
                .toList();
        return new LintReport(dir, sorted, (System.nanoTime() - t0) / 1e9);
    }

    private static void load(LintContext c) {
        Path cfgFile = c.dir.resolve("config.json");
        try {
            c.raw = readJson(cfgFile);
            if (c.raw != null && c.raw.path("model_type").isTextual()) c.family = Family.forModelType(c.raw.get("model_type").asText());
        } catch (BadInputException e) {
            c.add(Rules.CONFIG_LOAD_FAILED, ERROR, e.getMessage(), "fix config.json", "file", cfgFile.toString());
        }
        if (c.raw != null) {
            try {
                c.config = ModelConfig.load(c.dir);
            } catch (BadInputException e) {
                c.add(Rules.CONFIG_LOAD_FAILED, ERROR, "HF-normalised config cannot be built: " + e.getMessage()
                                + " (rules below run on the raw JSON)", "fix config.json (see the other findings)",
                        "file", cfgFile.toString());
            }
        }
        try {
            c.store = TensorStore.open(c.dir);
        } catch (BadInputException e) {
            c.add(Rules.WEIGHTS_LOAD_FAILED, ERROR, e.getMessage(), "fix or re-export the safetensors files");
        }
        if (c.config != null && c.store != null) {
            try {
                c.inspection = Model.inspect(c.config, c.store);
            } catch (BadInputException e) {
                c.add(Rules.WEIGHTS_LOAD_FAILED, ERROR, e.getMessage(), "fix the weights or config.json");
            }
        }
        c.tokenizerConfig = optionalJson(c, c.dir.resolve("tokenizer_config.json"));
        c.generationConfig = optionalJson(c, c.dir.resolve("generation_config.json"));
    }

    private static JsonNode optionalJson(LintContext c, Path file) {
        if (!Files.exists(file)) return null;
        try {
            return readJson(file);
        } catch (BadInputException e) {
            String rule = file.getFileName().toString().startsWith("tokenizer") ? Rules.TOK_LOAD_FAILED : Rules.GEN_LOAD_FAILED;
            c.add(rule, ERROR, e.getMessage(), "fix " + file.getFileName(), "file", file.toString());
            return null;
        }
    }

    /** A JSON object from a file, or a BadInputException naming the file. */
    static JsonNode readJson(Path file) {
        if (!Files.isRegularFile(file)) throw BadInputException.at(file, "file", "missing");
        JsonNode n;
        try {
            n = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw BadInputException.at(file, "file", "not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (n == null || !n.isObject()) throw BadInputException.at(file, "file", "must hold a JSON object");
        return n;
    }

    private static boolean hasSafetensors(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(p -> p.getFileName().toString().endsWith(".safetensors") || p.getFileName().toString().equals(TensorStore.INDEX_FILE));
        } catch (IOException e) {
            return false;
        }
    }
}
