package modeldiff.cli;

import modeldiff.forward.cuda.CudaRuntime;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Help that teaches: every option and parameter of every command is described; --impl says what runs here. */
class HelpTest {
    @Test
    void everyOptionOfEveryCommandHasADescription() {
        List<String> missing = new ArrayList<>();
        visit(new CommandLine(new Main()).getCommandSpec(), missing);
        assertEquals(List.of(), missing);
    }

    private static void visit(CommandSpec spec, List<String> missing) {
        List<ArgSpec> args = new ArrayList<>(spec.options());
        args.addAll(spec.positionalParameters());
        for (ArgSpec a : args) {
            String[] d = a.description();
            if (d.length == 0 || String.join("", d).isBlank())
                missing.add(spec.qualifiedName() + " " + (a.isOption() ? ((CommandLine.Model.OptionSpec) a).longestName() : a.paramLabel()));
        }
        for (CommandLine sub : spec.subcommands().values()) visit(sub.getCommandSpec(), missing);
    }

    @Test
    void implHelpListsImplementationsAndWhyOneIsMissing() {
        CliRun r = CliRun.of("trace", "--help");
        assertEquals(0, r.code(), r.toString());
        String help = r.out().replaceAll("\\s+", " ");
        String unwrapped = help.replaceAll(": (?=fp16|bf16|fp32)", ":");   // picocli may wrap a line after "cuda:"
        for (String impl : new String[]{"reference", "lowp:bf16", "lowp:fp16", "lowp:fp32", "torch:fp32", "torch:fp16", "cuda:fp32", "cuda:bf16",
                "cuda:fp16"})
            assertTrue(unwrapped.contains(impl), impl + " missing from\n" + r.out());
        assertTrue(help.contains("always available"), help);
        if (!CudaRuntime.available())
            assertTrue(unwrapped.contains("cuda:fp32, cuda:bf16, cuda:fp16 (not available here: no NVIDIA GPU driver"), help);
    }

    @Test
    void commonOptionsComeFirst() {
        for (String cmd : new String[]{"trace", "compare", "hunt", "lint", "check", "info"}) {
            CommandSpec spec = new CommandLine(new Main()).getSubcommands().get(cmd).getCommandSpec();
            assertEquals("--model", spec.options().get(0).longestName(), cmd);
        }
    }

    @Test
    void withoutAGpuCudaSaysSoInOneLine(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        Assumptions.assumeFalse(CudaRuntime.available(), "a GPU is here");
        CliRun r = CliRun.of("trace", "--model", modeldiff.Fixtures.model("llama").toString(), "--impl", "cuda:fp32",
                "--out", tmp.resolve("t.safetensors").toString());
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines(), r.toString());
        assertTrue(r.err().contains("no NVIDIA GPU driver"), r.toString());
    }

    @Test
    void doctorPrintsOneTable() {
        CliRun r = CliRun.of("doctor");
        assertEquals(0, r.code(), r.toString());
        for (String row : new String[]{"java", "Vector API", "torch", "CUDA", "tokenizer"})
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith(row)), row + " missing:\n" + r.out());
        assertEquals(5, r.out().lines().count(), r.out());
    }

    @Test
    void checkAndBaselineShareOneDefaultFolder() {
        CommandLine main = new CommandLine(new Main());
        assertEquals(modeldiff.release.Baseline.DEFAULT_DIR_TEXT, main.getSubcommands().get("baseline").getCommandSpec().findOption("--dir").defaultValue());
        assertTrue(String.join(" ", main.getSubcommands().get("check").getCommandSpec().findOption("--baselines").description())
                .contains(modeldiff.release.Baseline.DEFAULT_DIR_TEXT));
    }
}
