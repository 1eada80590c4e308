package modeldiff.cli;

import modeldiff.Fixtures;
import modeldiff.model.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Exit codes a pipeline can rely on, per command: 0 clean, 1 a finding, 2 bad input, 3 an internal error with one
 * line (the stack trace only with --debug). The findings are real: HF traces of the fixtures with bugs planted.
 */
class ExitCodesTest {
    private static final String LLAMA = Fixtures.model("llama").toString();

    @TempDir
    Path tmp;

    private static String trace(String fixture, String file) {
        return Fixtures.trace(fixture, file).toString();
    }

    @Test
    void compareIsZeroWithoutExcessAndOneWithIt() {
        CliRun clean = CliRun.of("compare", "--model", LLAMA, "--reference", "reference", "--candidate", trace("llama", "hf-float32.safetensors"));
        assertEquals(0, clean.code(), clean.toString());
        CliRun bug = CliRun.of("compare", "--model", LLAMA, "--reference", "reference", "--candidate", trace("llama", "planted-qk.interleaved-float32.safetensors"));
        assertEquals(1, bug.code(), bug.toString());
        assertTrue(bug.out().contains("excess error"), bug.toString());
    }

    @Test
    void huntIsZeroWhenExplainedAndOneWhenUnexplained() {
        CliRun explained = CliRun.of("hunt", "--model", LLAMA, "--target", trace("llama", "planted-qk.interleaved-float32.safetensors"));
        assertEquals(0, explained.code(), explained.toString());
        CliRun unexplained = CliRun.of("hunt", "--model", LLAMA, "--target", trace("llama", "planted-perturb.layer1-float32.safetensors"));
        assertEquals(1, unexplained.code(), unexplained.toString());
    }

    @Test
    void writeConfigIsRefusedUnlessExplained() {
        Path refused = tmp.resolve("refused"), written = tmp.resolve("written");
        CliRun unexplained = CliRun.of("hunt", "--model", LLAMA, "--target", trace("llama", "planted-perturb.layer1-float32.safetensors"),
                "--write-config", refused.toString());
        assertEquals(1, unexplained.code(), unexplained.toString());
        assertTrue(unexplained.err().contains("--write-config: nothing written"), unexplained.toString());
        assertFalse(Files.exists(refused.resolve("config.json")));
        CliRun match = CliRun.of("hunt", "--model", LLAMA, "--target", trace("llama", "hf-float32.safetensors"), "--write-config", refused.toString());
        assertEquals(0, match.code(), match.toString());
        assertFalse(Files.exists(refused.resolve("config.json")), "a match has nothing to correct");
        CliRun explained = CliRun.of("hunt", "--model", Fixtures.model("qwen3").toString(),
                "--target", trace("qwen3", "planted-rope.theta10000-float32.safetensors"), "--write-config", written.toString());
        assertEquals(0, explained.code(), explained.toString());
        assertTrue(Files.exists(written.resolve("config.json")), explained.toString());
    }

    // lint's exit 1 on an error: LintCommandTest (NaN weights).

    @Test
    void badInputIsTwoWithOneLine() {
        for (String[] args : new String[][]{
                {"compare", "--model", tmp.resolve("nope").toString(), "--reference", "reference", "--candidate", "lowp:bf16"},
                {"compare", "--model", LLAMA, "--reference", "reference", "--candidate", "lowp:bf16", "--noise-floor", "guess"},
                {"trace", "--model", LLAMA, "--probes", "some", "--out", tmp.resolve("t.safetensors").toString()},
                {"trace", "--model", LLAMA, "--storage", "f16", "--out", tmp.resolve("t.safetensors").toString()},
                {"ops", "gelu_fast", "--vs", "silu"},
                {"hunt", "--model", LLAMA, "--target", tmp.resolve("none.safetensors").toString()},
                {"check", "--model", tmp.resolve("nope").toString()},
                {"lint", "--model", tmp.resolve("nope").toString()}}) {
            CliRun r = CliRun.of(args);
            assertEquals(2, r.code(), String.join(" ", args) + "\n" + r);
            assertEquals(1, r.errLines(), r.toString());
            assertTrue(r.err().startsWith("modeldiff: "), r.toString());
        }
    }

    @Command(name = "boom")
    static final class Boom implements Runnable {
        @CommandLine.Option(names = "--debug")
        boolean debug;

        @Override
        public void run() {
            throw new IllegalArgumentException("an internal precondition");
        }
    }

    @Command(name = "bad")
    static final class Bad implements Runnable {
        @Override
        public void run() {
            throw new BadInputException("x.json: key 'y': not a number");
        }
    }

    @Test
    void internalErrorsAreThreeWithOneLineAndTheTraceOnlyWithDebug() {
        CliRun r = run(new Boom());
        assertEquals(3, r.code(), r.toString());
        assertEquals(1, r.errLines(), r.toString());
        assertTrue(r.err().contains("internal error: java.lang.IllegalArgumentException: an internal precondition"), r.toString());
        assertTrue(r.err().contains("--debug"), r.toString());
        CliRun debug = run(new Boom(), "--debug");
        assertEquals(3, debug.code());
        assertTrue(debug.err().contains("\tat modeldiff.cli.ExitCodesTest$Boom.run"), debug.toString());
        CliRun bad = run(new Bad());
        assertEquals(2, bad.code(), bad.toString());
        assertEquals("modeldiff: x.json: key 'y': not a number\n", bad.err());
    }

    private static CliRun run(Runnable command, String... args) {
        java.io.StringWriter err = new java.io.StringWriter();
        CommandLine cl = new CommandLine(command);
        cl.setErr(new java.io.PrintWriter(err, true));
        int code = Main.execute(cl, args);
        return new CliRun(code, "", err.toString());
    }
}
