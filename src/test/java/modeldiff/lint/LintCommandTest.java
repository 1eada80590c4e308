package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.Fixtures;
import modeldiff.cli.Main;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `modeldiff lint` end to end: exit codes, text, JSON that parses back, --force, the model folder untouched. */
class LintCommandTest {
    @TempDir
    Path tmp;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private PrintStream saved;

    @BeforeEach
    void capture() {
        saved = System.out;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(saved);
    }

    private String stdout() {
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void cleanFixtureExitsZero() {
        Path m = Fixtures.model("llama");
        Map<String, String> before = Planted.checksums(m);
        assertEquals(0, Main.execute("lint", "--model", m.toString()));
        assertTrue(stdout().contains("0 error(s), 0 warning(s)"), stdout());
        assertEquals(before, Planted.checksums(m));
    }

    @Test
    void errorsExitOneAndJsonParsesBack() throws IOException {
        Planted p = Planted.copy("llama", tmp).config(c -> c.put("eos_token_id", 999))
                .tensors(m -> m.get("model.layers.0.mlp.gate_proj.weight").values[0] = Double.NaN);
        Map<String, String> before = Planted.checksums(p.dir);
        Path json = tmp.resolve("out/findings.json");
        assertEquals(1, Main.execute("lint", "--model", p.dir.toString(), "--json", json.toString(), "--tokens", "5,6"));
        assertEquals(before, Planted.checksums(p.dir));
        String text = stdout();
        assertTrue(text.startsWith("SEVERITY"), text);
        assertTrue(text.contains("weights.nonfinite"), text);

        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(Set.of("findings"), Set.copyOf(iter(root.fieldNames())));
        JsonNode fs = root.get("findings");
        assertTrue(fs.isArray() && fs.size() >= 2);
        for (JsonNode f : fs) {
            assertEquals(Set.of("rule", "severity", "message", "evidence", "fix"), Set.copyOf(iter(f.fieldNames())));
            assertTrue(Set.of("info", "warning", "error").contains(f.get("severity").asText()));
            assertTrue(f.get("evidence").isObject());
        }
        assertEquals("error", fs.get(0).get("severity").asText()); // errors first
        JsonNode nan = null;
        for (JsonNode f : fs) if (f.get("rule").asText().equals("weights.nonfinite")) nan = f;
        assertEquals("model.layers.0.mlp.gate_proj.weight", nan.get("evidence").get("tensor").asText());
        assertEquals(1, nan.get("evidence").get("nan").asInt());
        // no temporary file left beside it
        try (var s = Files.list(json.getParent())) {
            assertEquals(1, s.count());
        }
    }

    @Test
    void jsonRefusesToOverwriteWithoutForce() throws IOException {
        Path json = tmp.resolve("f.json");
        Files.writeString(json, "keep");
        String model = Fixtures.model("gemma").toString();
        assertEquals(2, Main.execute("lint", "--model", model, "--json", json.toString()));
        assertEquals("keep", Files.readString(json));
        assertEquals(0, Main.execute("lint", "--model", model, "--json", json.toString(), "--force"));
        assertEquals(0, new ObjectMapper().readTree(json.toFile()).get("findings").size());
    }

    @Test
    void jsonInsideTheModelFolderIsRefused() {
        Planted p = Planted.copy("gemma", tmp);
        Map<String, String> before = Planted.checksums(p.dir);
        assertEquals(2, Main.execute("lint", "--model", p.dir.toString(), "--json", p.dir.resolve("lint.json").toString()));
        assertEquals(before, Planted.checksums(p.dir));
    }

    @Test
    void badInputExitsTwo() {
        assertEquals(2, Main.execute("lint", "--model", tmp.resolve("nope").toString()));
        assertEquals(2, Main.execute("lint", "--model", tmp.toString())); // a folder, but no release in it
        assertEquals(2, Main.execute("lint"));
        String model = Fixtures.model("gemma").toString();
        assertEquals(2, Main.execute("lint", "--model", model, "--tokens", "2,3",
                "--tokens-from", Fixtures.trace("gemma", "hf-float64.safetensors").toString()));
        assertEquals(2, Main.execute("lint", "--model", model, "--tokens", "2,x"));
        assertEquals(2, Main.execute("lint", "--model", model, "--tokens-from", tmp.resolve("missing.safetensors").toString()));
    }

    @Test
    void tokensFromTraceAndInputErrors() {
        String model = Fixtures.model("gemma").toString();
        assertEquals(0, Main.execute("lint", "--model", model, "--tokens-from", Fixtures.trace("gemma", "hf-float64.safetensors").toString()));
        assertEquals(1, Main.execute("lint", "--model", model, "--tokens", "5,6,7"));
        assertTrue(stdout().contains("input.missing_bos"), stdout());
    }

    @Test
    void skipNonfiniteAndListRules() {
        Planted p = Planted.copy("llama", tmp).tensors(m -> m.get("model.norm.weight").values[0] = Double.NaN);
        assertEquals(1, Main.execute("lint", "--model", p.dir.toString()));
        assertEquals(0, Main.execute("lint", "--model", p.dir.toString(), "--skip-nonfinite"));
        assertEquals(0, Main.execute("lint", "--list-rules"));
        for (Rules.Rule r : Rules.ALL) assertTrue(stdout().contains(r.id()), r.id());
        assertFalse(stdout().isEmpty());
    }

    private static <T> java.util.List<T> iter(java.util.Iterator<T> it) {
        java.util.List<T> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
