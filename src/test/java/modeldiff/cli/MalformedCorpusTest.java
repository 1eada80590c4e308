package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every malformed input of src/test/resources/malformed (MANIFEST.json, written by make_corpus.py) through the CLI:
 * exit code 2, exactly one line on stderr naming the file and containing the expected reason, no exception name or
 * stack frame, nothing written, the input untouched.
 */
class MalformedCorpusTest {
    static final Path ROOT = Path.of("src/test/resources/malformed");

    @TempDir
    Path tmp;

    static Stream<Arguments> cases() throws IOException {
        JsonNode m = new ObjectMapper().readTree(ROOT.resolve("MANIFEST.json").toFile());
        List<Arguments> out = new ArrayList<>();
        for (JsonNode c : m.get("cases"))
            out.add(Arguments.of(c.get("case").asText(), c.get("kind").asText(), c.get("error").asText()));
        return out.stream();
    }

    @Test
    void corpusIsLargeEnough() throws IOException {
        assertTrue(cases().count() >= 30);
    }

    /** A FIFO where the weights or a trace should be (git cannot hold one, so it is made here): refused, not read. */
    @Test
    @org.junit.jupiter.api.Timeout(60)
    void fifoIsRefusedNotWaitedOn() throws Exception {
        Path model = tmp.resolve("fifo-model");
        Files.createDirectories(model);
        Files.copy(ROOT.resolve("models/st-empty-file/config.json"), model.resolve("config.json"));
        Process p = new ProcessBuilder("mkfifo", model.resolve("model.safetensors").toString(), tmp.resolve("fifo.safetensors").toString())
                .redirectErrorStream(true).start();
        org.junit.jupiter.api.Assumptions.assumeTrue(p.waitFor() == 0, "mkfifo unavailable");
        CliRun r = run("info", "--model", model.toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertTrue(r.err().contains("model.safetensors: file: not a regular file"), r.err());
        r = run("compare", "--model", Fixtures.model("llama").toString(), "--reference", "reference", "--candidate",
                tmp.resolve("fifo.safetensors").toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        r = run("trace", "--model", Fixtures.model("llama").toString(), "--tokens-from", tmp.resolve("fifo.safetensors").toString(),
                "--out", tmp.resolve("o.safetensors").toString());
        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertTrue(r.err().contains("fifo.safetensors: file: not a regular file"), r.err());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void failsWithOneLineAndExitTwo(String name, String kind, String expected) throws IOException {
        Path input = kind.equals("model") ? ROOT.resolve("models").resolve(name) : ROOT.resolve("traces").resolve(name + ".safetensors");
        assertTrue(Files.exists(input), input.toString());
        Path outDir = tmp.resolve("out");
        Path out = outDir.resolve(kind.equals("model") ? "trace.safetensors" : "report.json");
        String[] args = kind.equals("model")
                ? new String[]{"trace", "--model", input.toString(), "--out", out.toString()}
                : new String[]{"compare", "--model", Fixtures.model("llama").toString(), "--reference", "reference",
                "--candidate", input.toString(), "--json", out.toString()};
        Map<String, String> before = checksums(input);

        CliRun r = run(args);

        assertEquals(Main.EXIT_BAD_INPUT, r.code(), r.err());
        assertTrue(r.err().endsWith("\n"), r.err());
        assertEquals(1, r.err().split("\n", -1).length - 1, "exactly one line on stderr: " + r.err());
        String line = r.err().strip();
        assertTrue(line.startsWith("modeldiff: "), line);
        assertTrue(line.contains(expected), "expected '" + expected + "' in: " + line);
        assertTrue(line.contains(name), "the message names the file: " + line);
        assertFalse(line.contains("Exception") || line.contains("\tat ") || line.contains("internal error"), line);
        assertFalse(Files.exists(outDir), "nothing written");
        assertEquals("", r.out(), "nothing on stdout");
        assertEquals(before, checksums(input), "the input is untouched");

        // --debug adds the stack trace, and only then.
        CliRun d = run(withDebug(args));
        assertEquals(Main.EXIT_BAD_INPUT, d.code());
        assertTrue(d.err().startsWith(r.err()), d.err());
        assertTrue(d.err().contains("\tat "), "--debug shows the stack trace");
    }

    private static String[] withDebug(String[] args) {
        String[] a = new String[args.length + 1];
        System.arraycopy(args, 0, a, 0, args.length);
        a[args.length] = "--debug";
        return a;
    }

    /** One in-process run (CliRun's, under the name this test's cases read). */
    static CliRun run(String... args) {
        return CliRun.of(args);
    }

    /** SHA-256 of every file under {@code p} (links not followed), by relative path. */
    static Map<String, String> checksums(Path p) throws IOException {
        Map<String, String> out = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(p)) {
            files = s.filter(f -> Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)).toList();
        }
        for (Path f : files) {
            try {
                out.put(p.relativize(f).toString(), HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f))));
            } catch (java.security.NoSuchAlgorithmException ex) {
                throw new IllegalStateException(ex);
            }
        }
        return out;
    }
}
