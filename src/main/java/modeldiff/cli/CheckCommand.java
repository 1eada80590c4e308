package modeldiff.cli;

import modeldiff.release.Baseline;
import modeldiff.release.ReleaseChecks;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Run the release checks (the ModelReleaseTest suite) on one model folder; exit 1 when any fails.")
final class CheckCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model folder.")
    Path model;

    @Option(names = "--traces", paramLabel = "DIR", description = "Traces of other implementations to check (default: a 'traces' folder beside the model folder).")
    Path traces;

    @Option(names = "--trace-filter", defaultValue = "", paramLabel = "PREFIX", description = "Only traces whose file name starts with this.")
    String filter;

    @Option(names = "--baselines", defaultValue = "baselines", paramLabel = "DIR", description = "Accepted deviations (default: ${DEFAULT-VALUE}).")
    Path baselines;

    @Option(names = "--reports", defaultValue = "reports/release", paramLabel = "DIR", description = "Where the HTML report goes (default: ${DEFAULT-VALUE}).")
    Path reports;

    @Option(names = "--debug", description = "Show stack traces.")
    boolean debug;

    @picocli.CommandLine.Mixin
    TextInputOptions textInput;

    @Override
    public Integer call() {
        Path t = traces != null ? traces : ReleaseChecks.defaultTracesDir(model);
        ReleaseChecks rc = new ReleaseChecks(model, t, n -> n.startsWith(filter), reports, new Baseline(baselines));
        if (textInput.given()) {
            int[] ids = textInput.ids(model);
            Common.checkVocabulary(ids, modeldiff.model.ModelConfig.load(model), "the release's tokenizer");
            rc.useTokens(ids);
        }
        int failed = 0, passed = 0, skipped = 0;
        for (ReleaseChecks.Check c : rc.checks()) {
            try {
                c.body().run();
                passed++;
                System.out.println("PASS " + c.id());
            } catch (ReleaseChecks.Skipped s) {
                skipped++;
                System.out.println("SKIP " + c.id() + ": " + s.getMessage());
            } catch (ReleaseChecks.Failure f) {
                failed++;
                System.out.println("FAIL " + c.id() + ": " + f.getMessage());
            }
        }
        System.out.println(rc.release() + ": " + passed + " passed, " + failed + " failed, " + skipped + " skipped");
        return failed == 0 ? 0 : 1;
    }
}
