package modeldiff.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.cli.Main;
import modeldiff.model.DType;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reports show a trace's producer metadata but never its answer key unlabelled: `planted` (what a fixture maker
 * planted, the thing a hunt is meant to find) appears in the HTML only under {@link HtmlReport#ANSWER_KEY_LABEL}, and in
 * the JSON under "answer_key", apart from "extra".
 */
class AnswerKeyTest {
    @TempDir
    Path tmp;

    @Test
    void plantedIsLabelledInHtmlAndKeptApartInJson() throws Exception {
        Path model = TinyModel.write(tmp.resolve("model"), "float32");
        Path ref = tmp.resolve("ref.safetensors");
        assertEquals(0, run("trace", "--model", model.toString(), "--out", ref.toString(), "--tokens", "1,4,9"));
        Trace clean = TraceFiles.read(ref);
        Trace keyed = new Trace("some stack 1.0", clean.dtype(), "cpu", clean.tokens(), clean.positionOffset());
        clean.probes().values().forEach(p -> keyed.put(p.name(), p.cols(), p.data()));
        keyed.putExtra("planted", "[\"act.gelu_exact\"]");
        keyed.putExtra("git_commit", "abc123");
        Path cand = tmp.resolve("cand.safetensors");
        TraceFiles.write(keyed, cand, DType.F64);
        Path html = tmp.resolve("r.html"), json = tmp.resolve("r.json");
        assertEquals(0, run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", cand.toString(),
                "--report", html.toString(), "--json", json.toString(), "--noise-floor", "table"));
        String page = Files.readString(html).replace("&#61;", "=").replace("&quot;", "\"");
        assertTrue(page.contains(HtmlReport.ANSWER_KEY_LABEL + "planted: [\"act.gelu_exact\"]"), "labelled answer key");
        assertFalse(page.replace(HtmlReport.ANSWER_KEY_LABEL + "planted", "").contains("planted"), "planted shown without its label");
        assertTrue(page.contains("git_commit: abc123"), "producer metadata is shown as it is");
        JsonNode c = new ObjectMapper().readTree(json.toFile()).get("candidates").get(0);
        assertEquals("[\"act.gelu_exact\"]", c.get("answer_key").get("planted").asText());
        assertFalse(c.get("extra").has("planted"));
        assertEquals("abc123", c.get("extra").get("git_commit").asText());
    }

    private static int run(String... args) {
        PrintStream so = System.out;
        try {
            System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            return Main.execute(args);
        } finally {
            System.setOut(so);
        }
    }
}
