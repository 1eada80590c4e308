package modeldiff.cli;

import modeldiff.Fixtures;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import modeldiff.util.AtomicFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;
import java.util.stream.Stream;

import static modeldiff.cli.MalformedCorpusTest.checksums;
import static modeldiff.cli.MalformedCorpusTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --max-tokens, the memory estimate, --timeout, output permissions, --force on every command, non-finite weights. */
class LimitsAndOutputsTest {
    @TempDir
    Path tmp;

    private void assertBadInput(CliRun r, String expected) {
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    private static String llama() {
        return Fixtures.model("llama").toString();
    }

    @Test
    void maxTokensRefusesLongInputs() {
        Path out = tmp.resolve("t.safetensors");
        assertBadInput(run("trace", "--model", llama(), "--tokens", "1,2,3", "--max-tokens", "2", "--out", out.toString()),
                "input of 3 tokens is over --max-tokens 2");
        assertFalse(Files.exists(out));
        // A trace's tokens count too (compare takes them from the trace).
        Path trace = Fixtures.trace("llama", "hf-float32.safetensors");
        assertBadInput(run("compare", "--model", llama(), "--reference", "reference", "--candidate", trace.toString(),
                "--max-tokens", "4"), "over --max-tokens 4");
        assertBadInput(run("hunt", "--model", llama(), "--target", trace.toString(), "--max-tokens", "4"), "over --max-tokens 4");
        // A malformed flag is one line too (not the usage text).
        assertBadInput(run("trace", "--model", llama(), "--max-tokens", "many", "--out", out.toString()),
                "Invalid value for option '--max-tokens'");
        // The default is 4096.
        StringJoiner many = new StringJoiner(",");
        for (int i = 0; i < 4097; i++) many.add(Integer.toString(i % 200));
        assertBadInput(run("trace", "--model", llama(), "--tokens", many.toString(), "--out", out.toString()), "over --max-tokens 4096");
    }

    @Test
    void memoryEstimateRefusesBeforeLoading() {
        StringJoiner many = new StringJoiner(",");
        for (int i = 0; i < 300_000; i++) many.add(Integer.toString(i % 200));
        long t0 = System.nanoTime();
        Path out = tmp.resolve("t.safetensors");
        var r = run("trace", "--model", llama(), "--tokens", many.toString(), "--max-tokens", "1000000", "--out", out.toString());
        assertBadInput(r, "of Java heap (300000 tokens");
        assertTrue(r.err().contains("MODELDIFF_JAVA_OPTS"), r.err());
        assertTrue((System.nanoTime() - t0) / 1e9 < 30, "refused up front, not after running");
        assertFalse(Files.exists(out));
    }

    @Test
    void estimateGrowsWithTokensAndProbes() {
        var m = modeldiff.model.Model.open(Fixtures.model("llama"));
        long small = Limits.estimateHeapBytes(m, 8, modeldiff.forward.ProbeLevel.LAYERS, 1);
        long more = Limits.estimateHeapBytes(m, 800, modeldiff.forward.ProbeLevel.LAYERS, 1);
        long all = Limits.estimateHeapBytes(m, 800, modeldiff.forward.ProbeLevel.ALL, 1);
        long held = Limits.estimateHeapBytes(m, 800, modeldiff.forward.ProbeLevel.ALL, 4);
        assertTrue(small < more && more < all && all < held, small + " " + more + " " + all + " " + held);
    }

    @Test
    void timeoutAbortsAPassWithOneLine() {
        Path out = tmp.resolve("t.safetensors");
        StringJoiner many = new StringJoiner(",");
        for (int i = 0; i < 2000; i++) many.add(Integer.toString(i % 200));
        var r = run("trace", "--model", llama(), "--tokens", many.toString(), "--probes", "all", "--timeout", "0.05", "--out", out.toString());
        assertBadInput(r, "reference: timed out after 0.05 s (--timeout)");
        assertFalse(Files.exists(out), "nothing written");
        r = run("compare", "--model", llama(), "--reference", "reference", "--candidate", "lowp:bf16", "--tokens", many.toString(),
                "--timeout", "0.05");
        assertBadInput(r, "timed out after 0.05 s");
        assertBadInput(run("trace", "--model", llama(), "--timeout", "-1", "--out", out.toString()), "--timeout must be a positive number");
        // Within the limit, nothing changes.
        r = run("trace", "--model", llama(), "--tokens", "1,2,3", "--timeout", "600", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(3, TraceFiles.read(out).tokens().length);
    }

    @Test
    void outputsAreReadableLikeAnyNewFileAndLeaveNoTemporaries() throws IOException {
        Path ordinary = Files.createFile(tmp.resolve("ordinary"));
        Set<PosixFilePermission> expected = Files.getPosixFilePermissions(ordinary); // 0666 less this process's umask
        Path dir = tmp.resolve("out");
        Path trace = dir.resolve("t.safetensors"), html = dir.resolve("r.html"), json = dir.resolve("r.json");
        assertEquals(0, run("trace", "--model", llama(), "--tokens", "1,2,3", "--out", trace.toString()).code());
        var r = run("compare", "--model", llama(), "--reference", "reference", "--candidate", trace.toString(),
                "--report", html.toString(), "--json", json.toString(), "--noise-floor", "table");
        assertEquals(0, r.code(), r.err());
        for (Path p : new Path[]{trace, html, json})
            assertEquals(expected, Files.getPosixFilePermissions(p), p + " has the mode of an ordinary new file, not 0600");
        assertTrue(expected.contains(PosixFilePermission.OTHERS_READ) || !Files.getPosixFilePermissions(ordinary).contains(PosixFilePermission.OTHERS_READ));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(Set.of("t.safetensors", "r.html", "r.json"), Set.copyOf(s.map(p -> p.getFileName().toString()).toList()));
        }
    }

    @Test
    void atomicFilesHonoursTheUmaskAndNamesItsTemporaries() throws IOException {
        Path target = tmp.resolve("x.txt");
        AtomicFiles.writeString(target, "one");
        AtomicFiles.writeString(target, "two");
        assertEquals("two", Files.readString(target));
        assertEquals(Files.getPosixFilePermissions(Files.createFile(tmp.resolve("y"))), Files.getPosixFilePermissions(target));
        assertTrue(AtomicFiles.isTemporary(".x.txt.0123456789abcdef.tmp"));
        assertFalse(AtomicFiles.isTemporary("x.txt"));
    }

    @Test
    void everyCommandRefusesToReplaceWithoutForce() throws IOException {
        Path existing = tmp.resolve("exists");
        Files.writeString(existing, "keep");
        String e = existing.toString();
        String trace = Fixtures.trace("llama", "hf-float32.safetensors").toString();
        assertBadInput(run("trace", "--model", llama(), "--out", e), "exists; pass --force");
        assertBadInput(run("compare", "--model", llama(), "--reference", "reference", "--candidate", trace, "--report", e), "exists; pass --force");
        assertBadInput(run("compare", "--model", llama(), "--reference", "reference", "--candidate", trace, "--svg", e), "exists; pass --force");
        assertBadInput(run("hunt", "--model", llama(), "--target", trace, "--json", e), "exists; pass --force");
        assertBadInput(run("lint", "--model", llama(), "--json", e), "exists; pass --force");
        assertBadInput(run("ops", "gelu_exact", "--vs", "gelu_tanh", "--png", e), "exists; pass --force");
        Path demoDir = Files.createDirectories(tmp.resolve("demo"));
        Files.writeString(demoDir.resolve("demo.html"), "keep");
        assertBadInput(run("demo", "--out", demoDir.toString()), "demo.html: exists; pass --force");
        Path configDir = Files.createDirectories(tmp.resolve("cfg"));
        Files.writeString(configDir.resolve("config.diff"), "keep");
        assertBadInput(run("hunt", "--model", llama(), "--target", trace, "--write-config", configDir.toString()), "config.diff: exists");
        assertEquals("keep", Files.readString(existing));
        assertEquals("keep", Files.readString(demoDir.resolve("demo.html")));
        // ops with --force replaces it.
        assertEquals(0, run("ops", "gelu_exact", "--vs", "gelu_tanh", "--png", e, "--force").code());
        assertFalse(Files.readString(existing, java.nio.charset.StandardCharsets.ISO_8859_1).equals("keep"));
    }

    @Test
    void nothingIsWrittenInsideTheModelFolderEvenThroughALink() throws IOException {
        Path model = CliTestSupport.copyModel("llama", tmp.resolve("model"));
        Map<String, String> before = checksums(model);
        Path link = Files.createSymbolicLink(tmp.resolve("link"), model);
        String trace = Fixtures.trace("llama", "hf-float32.safetensors").toString();
        assertBadInput(run("trace", "--model", model.toString(), "--out", model.resolve("t.safetensors").toString()), "inside the model folder");
        assertBadInput(run("trace", "--model", model.toString(), "--out", link.resolve("sub/new/t.safetensors").toString()), "inside the model folder");
        assertBadInput(run("compare", "--model", link.toString(), "--reference", "reference", "--candidate", trace,
                "--json", model.resolve("r.json").toString()), "inside the model folder");
        assertBadInput(run("hunt", "--model", model.toString(), "--target", trace, "--write-config", model.toString()), "inside the model folder");
        assertBadInput(run("lint", "--model", model.toString(), "--json", link.resolve("l.json").toString()), "inside the model folder");
        assertEquals(before, checksums(model));
    }

    @Test
    void nonFiniteWeightsAreReportedNotFatalAndCompareFlagsThem() throws IOException {
        Path model = CliTestSupport.copyModel("llama", tmp.resolve("model"));
        Path clean = tmp.resolve("clean.safetensors"), nan = tmp.resolve("nan.safetensors");
        assertEquals(0, run("trace", "--model", model.toString(), "--tokens", "1,5,9", "--out", clean.toString()).code());
        CliTestSupport.editWeights(model, (name, v) -> {
            if (name.equals("model.layers.1.mlp.down_proj.weight")) v[3] = Double.NaN;
        });
        assertEquals(0, run("info", "--model", model.toString()).code(), "opening reads no values: NaN is no reason to refuse");
        var r = run("trace", "--model", model.toString(), "--tokens", "1,5,9", "--out", nan.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("warning: reference:") && r.err().contains("NaN/Inf"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        Trace t = TraceFiles.read(nan);
        assertTrue(Double.isNaN(t.probe("logits").data()[0]), "the probe shows NaN");
        assertTrue(Double.isFinite(t.probe("layers.0").data()[0]), "layers before the NaN weight are finite");
        r = run("compare", "--model", model.toString(), "--reference", clean.toString(), "--candidate", nan.toString(), "--noise-floor", "table");
        assertEquals(1, r.code(), "NaN/Inf is excess error, a finding: " + r.err());
        assertTrue(r.out().contains("layer 1") && r.out().contains("non-finite"), r.out());
        r = run("lint", "--model", model.toString());
        assertTrue(r.out().contains("weights.nonfinite") && r.out().contains("model.layers.1.mlp.down_proj.weight"), r.out());
    }
}
