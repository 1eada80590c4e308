package modeldiff.release;

import modeldiff.Fixtures;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The regression suite for a model release. Point it at downloaded releases:
 * <pre>mvn -B test -Dtest=ModelReleaseTest -Dmodeldiff.models=/path/to/release[,/path/to/other]</pre>
 * (or MODELDIFF_MODELS). Default: the shipped fixtures. Options:
 * {@code -Dmodeldiff.traces=DIR} (traces of other implementations to check; default: a "traces" folder beside each
 * model folder), {@code -Dmodeldiff.traceFilter=PREFIX} (default "hf-": the clean HF traces of the fixtures),
 * {@code -Dmodeldiff.baselines=DIR} (accepted deviations; default src/test/resources/baselines).
 * Reports land in target/modeldiff-reports/.
 */
class ModelReleaseTest {
    @TestFactory
    List<DynamicNode> releases() {
        String models = System.getProperty("modeldiff.models", System.getenv().getOrDefault("MODELDIFF_MODELS", ""));
        List<Path> dirs = new ArrayList<>();
        if (models.isBlank()) {
            for (String name : Fixtures.names()) dirs.add(Fixtures.model(name));
        } else {
            for (String m : models.split(",")) if (!m.isBlank()) dirs.add(Path.of(m.trim()));
        }
        String tracesProp = System.getProperty("modeldiff.traces");
        String prefix = System.getProperty("modeldiff.traceFilter", "hf-");
        Predicate<String> filter = n -> n.startsWith(prefix);
        Baseline baseline = new Baseline(Path.of(System.getProperty("modeldiff.baselines", "src/test/resources/baselines")));
        Path reports = Path.of("target", "modeldiff-reports");
        List<DynamicNode> nodes = new ArrayList<>();
        for (Path dir : dirs) {
            Path traces = tracesProp != null ? Path.of(tracesProp) : ReleaseChecks.defaultTracesDir(dir);
            ReleaseChecks rc = new ReleaseChecks(dir, traces, filter, reports, baseline);
            List<DynamicTest> tests = new ArrayList<>();
            for (ReleaseChecks.Check c : rc.checks())
                tests.add(DynamicTest.dynamicTest(c.id() + ": " + c.description(), () -> {
                    try {
                        c.body().run();
                    } catch (ReleaseChecks.Skipped s) {
                        Assumptions.abort(s.getMessage());
                    }
                }));
            nodes.add(DynamicContainer.dynamicContainer(rc.release(), tests));
        }
        return nodes;
    }
}
