package modeldiff.cli;

import modeldiff.trace.TraceFiles;
import modeldiff.util.AtomicFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static modeldiff.cli.MalformedCorpusTest.checksums;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `modeldiff trace` and `compare --report` in a child JVM, SIGKILLed at random points: afterwards the output is
 * either absent or complete (never a truncated file under the target's name), anything else in the output folder is
 * a temporary named as such, and the model folder is byte-identical.
 */
class InterruptedRunTest {
    static final int KILLS = 6;

    @TempDir
    Path tmp;

    @Test
    void killedTraceLeavesNoPartialOutput() throws Exception {
        Path model = CliTestSupport.copyModel("llama", tmp.resolve("model"));
        // Enough tokens and probes that the trace is ~10 MB: writing it takes a while, and so does computing it.
        killRepeatedly(model, out -> List.of("trace", "--model", model.toString(), "--probes", "all", "--tokens", tokens(600),
                        "--out", out.toString()), "t.safetensors",
                out -> assertEquals(600, TraceFiles.read(out).tokens().length), 11, true);
    }

    @Test
    void killedCompareLeavesNoPartialReport() throws Exception {
        Path model = CliTestSupport.copyModel("llama", tmp.resolve("model"));
        killRepeatedly(model, out -> List.of("compare", "--model", model.toString(), "--reference", "reference",
                        "--candidate", "lowp:fp32", "--tokens", tokens(300), "--noise-floor", "table", "--report", out.toString()),
                // The page is small and written in a millisecond or two: kills rarely catch it mid-write.
                "report.html", out -> assertTrue(Files.readString(out).strip().endsWith("</html>"), "complete page"), 23, false);
    }

    interface Args {
        List<String> of(Path out);
    }

    interface Complete {
        void check(Path out) throws Exception;
    }

    private void killRepeatedly(Path model, Args args, String name, Complete complete, long seed, boolean requireMidWrite) throws Exception {
        Map<String, String> before = checksums(model);
        // One full run: it must succeed, and its duration bounds the kill points.
        Path out0 = tmp.resolve("out0").resolve(name);
        long t0 = System.nanoTime();
        Process p = start(args.of(out0));
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the full run finished");
        assertEquals(0, p.exitValue(), new String(p.getErrorStream().readAllBytes()));
        long fullMs = (System.nanoTime() - t0) / 1_000_000;
        complete.check(out0);

        Random rnd = new Random(seed);
        int completed = 0, midWrite = 0;
        for (int i = 0; i < KILLS; i++) {
            Path dir = tmp.resolve("out" + (i + 1));
            Path out = dir.resolve(name);
            Process child = start(args.of(out));
            String when;
            if (i % 2 == 0) {
                // At a random point past JVM start-up (about a third of the run) up to just after the end.
                long at = (long) (fullMs * (0.3 + 0.8 * rnd.nextDouble()));
                when = at + " ms";
                child.waitFor(at, TimeUnit.MILLISECONDS);
            } else {
                // While the output is being written: as soon as its temporary file shows, plus up to 20 ms.
                long deadline = System.nanoTime() + 3 * fullMs * 1_000_000L;
                boolean seen = false;
                while (!seen && child.isAlive() && System.nanoTime() < deadline) {
                    seen = temporaries(dir) > 0;
                    if (!seen) Thread.sleep(1);
                }
                long extra = rnd.nextInt(21);
                Thread.sleep(extra);
                when = seen ? "temporary file seen + " + extra + " ms" : "end of run (no temporary seen)";
            }
            if (child.isAlive()) {
                child.destroyForcibly(); // SIGKILL: no shutdown hook, no finally block runs
                assertTrue(child.waitFor(60, TimeUnit.SECONDS));
            }
            if (temporaries(dir) > 0) midWrite++;
            if (Files.exists(out)) {
                complete.check(out);
                completed++;
            }
            if (Files.isDirectory(dir)) {
                try (Stream<Path> s = Files.list(dir)) {
                    for (Path f : s.toList()) {
                        String n = f.getFileName().toString();
                        assertTrue(n.equals(name) || AtomicFiles.isTemporary(n), "unexpected file after kill at " + when + ": " + n);
                        assertFalse(n.equals(name) && Files.size(f) == 0, "empty output");
                    }
                }
            }
            assertEquals(before, checksums(model), "model folder changed after kill at " + when);
        }
        System.out.println("[InterruptedRunTest] " + name + ": full run " + fullMs + " ms, " + KILLS + " kills: "
                + midWrite + " mid-write (a temporary left, the target absent or whole), " + completed + " after the output was complete");
        if (requireMidWrite) assertTrue(midWrite >= 1, "at least one kill landed while the output was being written");
    }

    private static long temporaries(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return 0;
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(f -> AtomicFiles.isTemporary(f.getFileName().toString())).count();
        }
    }

    private static Process start(List<String> args) throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx1g", "-XX:TieredStopAtLevel=1", "-cp", cp, Main.class.getName()));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.PIPE).start();
    }

    static String tokens(int n) {
        StringJoiner j = new StringJoiner(",");
        for (int i = 0; i < n; i++) j.add(Integer.toString((i * 37 + 1) % 256));
        return j.toString();
    }

}
