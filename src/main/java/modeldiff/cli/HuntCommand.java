package modeldiff.cli;

import modeldiff.hunt.ConfigCorrection;
import modeldiff.hunt.Hunt;
import modeldiff.hunt.HuntReport;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.report.RunInfo;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "hunt", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Find the set of catalog fixes that makes our implementation reproduce a target trace.",
                "Exit 0 when the target matches or is explained, 1 when it is unexplained, 2 for bad input, 3 for an internal error."})
final class HuntCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @Option(names = "--target", required = true, paramLabel = "TRACE", description = "Trace of the implementation to explain.")
    Path target;

    @Option(names = "--base", paramLabel = "IMPL", description = "Our pass to fix (default: reference for float64/float32 targets, lowp:<dtype> for bf16/fp16): " + Help.IMPLS + ".")
    String base;

    @Option(names = "--fixes", defaultValue = "all", paramLabel = "all|id,...", description = "Fixes to try (ids or id prefixes such as rope.theta).")
    String fixes;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the result as JSON (docs/hunt.md).")
    Path json;

    @Option(names = "--report", paramLabel = "FILE.html", description = "Write an HTML report with one line per tried fix set.")
    Path report;

    @Option(names = "--write-config", paramLabel = "DIR",
            description = "Write config.json corrected by the explaining fixes (and config.diff) into DIR: the reverse use, when the target is the original implementation. Refused unless the verdict is explained.")
    Path writeConfig;

    @picocli.CommandLine.Mixin
    Limits limits;

    /** The target was run on some input: with --text/--chat, the hunt first checks it was this text, tokenized this way. */
    @picocli.CommandLine.Mixin
    TextInputOptions textInput;

    @Option(names = "--no-prune", description = "Run every fix set to the end instead of stopping those clearly farther from the target than the run they extend.")
    boolean noPrune;

    @Option(names = "--force", description = "Replace existing outputs.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        for (Path p : new Path[]{json, report}) if (p != null) Common.checkOutput(p, model, force);
        if (writeConfig != null) {
            Common.checkOutput(writeConfig.resolve("config.json"), model, force);
            Common.checkOutput(writeConfig.resolve("config.diff"), model, force);
        }
        limits.checkTimeout();
        if (!Files.isRegularFile(target)) throw new BadInputException(target + ": no such trace file");
        Model m = Model.open(model);
        Trace t = TraceFiles.read(target);
        Common.checkVocabulary(t.tokens(), m.config, target + ": __metadata__.tokens");
        if (textInput.given()) Common.checkSameTokens(textInput.ids(model), t.tokens(), target);
        limits.checkTokens(t.tokens().length);
        // The target, the base run and the candidate runs the search keeps side by side.
        limits.checkMemory(m, t.tokens().length, modeldiff.forward.ProbeLevel.ALL, 4);
        Set<String> only = null;
        if (!fixes.equals("all")) {
            only = new LinkedHashSet<>();
            for (String f : fixes.split(",")) if (!f.isBlank()) only.add(f.trim());
        }
        Set<String> fixSet = only;
        // The hunt runs its base implementation many times inside hunt/; --timeout bounds the whole search.
        Hunt.Result r = limits.timeoutSeconds == null ? Hunt.run(m, t, base, fixSet, !noPrune, Progress.stderr()::show)
                : Limits.withTimeout("hunt", limits.timeoutSeconds, () -> Hunt.run(m, t, base, fixSet, !noPrune, Progress.stderr()::show));
        Progress.stderr().done();
        System.out.println(r.sentence());
        if (!r.equivalent().isEmpty())
            System.out.println("indistinguishable on this input: " + r.equivalent()
                    + (r.teacherForced() ? " (bit-identical in the layers where the target differs from the base run)" : ""));
        System.out.printf("%d runs (%d stopped early) in %.2f s (%.1f forwards' time)%n", r.runs(), r.pruned(), r.seconds(), r.costInForwards());
        List<String> command = new ArrayList<>();
        command.add("modeldiff");
        command.addAll(spec.commandLine().getParseResult().originalArgs());
        if (json != null) {
            HuntReport.writeJson(r, target.toString(), command, json);
            System.out.println("wrote " + json);
        }
        if (report != null) {
            HuntReport.writeHtml(r, target.toString(), t, new RunInfo(command, RunInfo.versions("0.1.0"), m.config), report);
            System.out.println("wrote " + report);
        }
        if (writeConfig != null) writeConfig(m, r);
        return r.verdict() == Hunt.Verdict.UNEXPLAINED ? Main.EXIT_FINDING : Main.EXIT_CLEAN;
    }

    /** Only an explained target has a correction: for a match there is nothing to correct, for an unexplained one no basis. */
    private void writeConfig(Model m, Hunt.Result r) {
        if (r.verdict() != Hunt.Verdict.EXPLAINED) {
            System.err.println("modeldiff: --write-config: nothing written: the verdict is \"" + r.verdict().id()
                    + "\", and a corrected config needs an explained target");
            return;
        }
        ConfigCorrection.Result c = ConfigCorrection.write(m, r.best().fixes(), writeConfig);
        System.out.println("wrote " + c.config() + " and " + c.diff());
        for (String n : c.notExpressible()) System.out.println("  not expressible in config.json: " + n);
    }
}
