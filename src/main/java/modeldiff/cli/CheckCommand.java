package modeldiff.cli;

import modeldiff.model.Model;
import modeldiff.release.Baseline;
import modeldiff.release.ReleaseChecks;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "check", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run the release checks (the ModelReleaseTest suite) on one model folder and write an HTML report of every check.",
                "Exit 0 when every check passes (or is skipped / accepted), 1 when any fails, 2 for bad input, 3 for an internal error."})
final class CheckCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @Option(names = "--traces", paramLabel = "DIR", description = "Traces of other implementations to check (default: a 'traces' folder beside the model folder).")
    Path traces;

    @Option(names = "--trace-filter", defaultValue = "", paramLabel = "PREFIX", description = "Only traces whose file name starts with this (default: all).")
    String filter;

    @Option(names = "--reports", paramLabel = "DIR", description = "Where the HTML report RELEASE.html goes (default: modeldiff/check under the system's temporary folder).")
    Path reports;

    @Option(names = "--baselines", paramLabel = "DIR", description = "Accepted deviations, as `modeldiff baseline` writes them (default: " + Baseline.DEFAULT_DIR_TEXT + ").")
    Path baselines;

    @Mixin
    GlobalOptions global;

    @picocli.CommandLine.Mixin
    TextInputOptions textInput;

    @Override
    public Integer call() {
        Model.open(model);   // bad input is exit 2 before anything runs, not a list of failed checks
        Path t = traces != null ? traces : ReleaseChecks.defaultTracesDir(model);
        Path out = reports != null ? reports : Outputs.defaultDir("check");
        ReleaseChecks rc = new ReleaseChecks(model, t, n -> n.startsWith(filter), out,
                new Baseline(baselines != null ? baselines : Baseline.DEFAULT_DIR));
        if (textInput.given()) {
            int[] ids = textInput.ids(model);
            Common.checkVocabulary(ids, modeldiff.model.ModelConfig.load(model), "the release's tokenizer");
            rc.useTokens(ids);
        }
        List<ReleaseChecks.Outcome> outcomes = new ArrayList<>();
        List<ReleaseChecks.Check> checks = rc.checks();
        Progress progress = Progress.stderr();
        try (Progress.Counter bar = progress.counter("checks", checks.size())) {
            for (ReleaseChecks.Check c : checks) {
                ReleaseChecks.Outcome o = rc.run(c);
                outcomes.add(o);
                bar.step();
                System.out.println(o.status() + " " + c.id() + (o.message() == null ? "" : ": " + o.message()));
            }
        }
        Path file = rc.writeReport(outcomes);
        long failed = outcomes.stream().filter(o -> o.status() == ReleaseChecks.Status.FAIL).count();
        System.out.println(rc.release() + ": " + count(outcomes, ReleaseChecks.Status.PASS) + " passed, " + failed + " failed, "
                + count(outcomes, ReleaseChecks.Status.SKIP) + " skipped, " + count(outcomes, ReleaseChecks.Status.ACCEPTED) + " accepted");
        System.out.println("wrote " + file);
        return failed == 0 ? Main.EXIT_CLEAN : Main.EXIT_FINDING;
    }

    private static long count(List<ReleaseChecks.Outcome> outcomes, ReleaseChecks.Status s) {
        return outcomes.stream().filter(o -> o.status() == s).count();
    }
}
