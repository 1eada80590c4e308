package modeldiff.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.cli.Main;
import modeldiff.compare.SyntheticTraces;
import modeldiff.model.DType;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `modeldiff compare` end to end on a tiny model built here: reference pass against traces of itself. */
class CompareCommandTest {
    @TempDir
    Path tmp;
    Path model, trace;
    String out, err;

    @BeforeEach
    void setUp() {
        model = TinyModel.write(tmp.resolve("model"), "float32");
        trace = tmp.resolve("ref.safetensors");
        assertEquals(0, run("trace", "--model", model.toString(), "--probes", "all", "--tokens", "1,5,9,30,2,17",
                "--position-offset", "40", "--out", trace.toString()), err);
    }

    private int run(String... args) {
        PrintStream so = System.out, se = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            return Main.execute(args);
        } finally {
            System.setOut(so);
            System.setErr(se);
            out = o.toString(StandardCharsets.UTF_8);
            err = e.toString(StandardCharsets.UTF_8);
        }
    }

    @Test
    void referenceAgainstATraceOfItselfHasNoExcess() throws Exception {
        Path html = tmp.resolve("out/r.html"), json = tmp.resolve("out/r.json"), png = tmp.resolve("out/r.png"), svg = tmp.resolve("out/r.svg");
        int rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", trace.toString(),
                "--report", html.toString(), "--json", json.toString(), "--png", png.toString(), "--svg", svg.toString());
        assertEquals(0, rc, err);
        // Tokens and offset came from the trace; the reference ran at probe level "all" to match it.
        assertTrue(out.startsWith("no excess error: every probe within the float64 noise floor\n"), out);
        for (Path p : new Path[]{html, json, png, svg}) {
            assertTrue(out.contains("wrote " + p), out);
            assertTrue(Files.size(p) > 0, p.toString());
        }
        assertTrue(err.isEmpty(), "no progress output without a console: " + err);
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertFalse(root.get("any_excess").asBoolean());
        assertEquals(40, root.get("input").get("position_offset").asInt());
        assertEquals(2 * 10 + 3, root.get("candidates").get(0).get("probes").size());
        assertEquals(0, root.get("candidates").get(0).get("missing_in_candidate").size());
        assertEquals("llama", root.get("model").get("model_type").asText());
        assertEquals(java.util.List.of("modeldiff", "compare", "--model", model.toString(), "--reference", "reference"),
                java.util.stream.StreamSupport.stream(root.get("command").get("argv").spliterator(), false).limit(6).map(JsonNode::asText).toList());
        // Same code, same input, float64 storage: bit-identical, so every probe sits at the clamp.
        for (JsonNode p : root.get("candidates").get(0).get("probes"))
            assertEquals(-20.0, p.get("log_l2").asDouble(), 0, p.get("name").asText());
        assertTrue(Files.readString(html).contains("no excess error"));
    }

    @Test
    void perturbedTraceIsCaughtAtItsLayer() {
        Trace t = TraceFiles.read(trace);
        Random rnd = new Random(1);
        boolean[] on = {false};
        Trace bad = SyntheticTraces.edited(t, t.dtype(), (name, d) -> {
            if (name.equals("layers.1.attn_norm")) on[0] = true; // everything from layer 1's first step on
            if (on[0]) SyntheticTraces.addRelativeNoise(d, 1e-3, rnd);
            return d;
        });
        Path badFile = tmp.resolve("bad.safetensors");
        TraceFiles.write(bad, badFile, DType.F64);
        int rc = run("compare", "--model", model.toString(), "--reference", trace.toString(), "--candidate", badFile.toString(),
                "--candidate", "reference");
        assertEquals(1, rc, "excess error is a finding: exit 1\n" + err);
        // 1e-3 relative noise is log-L2 -3; the float64 bound is MeasuredNoiseFloor.FLOAT64_BOUND = -9.
        assertTrue(out.contains(badFile + ": diverges first at layer 1, sub-layer attn_norm: excess error 6.0 decades above what float64 costs"), out);
        assertTrue(out.contains("reference: no excess error"), out);
    }

    @Test
    void badInputIsOneLineAndExitTwo() throws Exception {
        int rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", tmp.resolve("nope.safetensors").toString());
        assertEquals(Main.EXIT_BAD_INPUT, rc);
        assertEquals(1, err.strip().lines().count(), err);
        assertTrue(err.contains("no such trace file"), err);

        rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", "no-such-impl");
        assertEquals(Main.EXIT_BAD_INPUT, rc);
        assertTrue(err.contains("neither a trace file nor an implementation"), err);

        // Tokens given that differ from the trace's: refused, naming both sides.
        rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", trace.toString(), "--tokens", "1,2,3");
        assertEquals(Main.EXIT_BAD_INPUT, rc);
        assertTrue(err.contains("reference and " + trace) && err.contains("different tokens"), err);

        Path existing = tmp.resolve("exists.json");
        Files.writeString(existing, "{}");
        rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", trace.toString(), "--json", existing.toString());
        assertEquals(Main.EXIT_BAD_INPUT, rc);
        assertTrue(err.contains("--force"), err);
        assertEquals("{}", Files.readString(existing));
        rc = run("compare", "--model", model.toString(), "--reference", "reference", "--candidate", trace.toString(), "--json", existing.toString(), "--force");
        assertEquals(0, rc, err);
        assertTrue(Files.readString(existing).contains("modeldiff-report/1"));
    }
}
