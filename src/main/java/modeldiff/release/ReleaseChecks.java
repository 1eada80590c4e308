package modeldiff.release;

import modeldiff.compare.Comparison;
import modeldiff.compare.RoutingAgreement;
import modeldiff.compare.MeasuredNoiseFloor;
import modeldiff.compare.NoiseFloor;
import modeldiff.compare.TableNoiseFloor;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.hunt.Hunt;
import modeldiff.lint.Finding;
import modeldiff.lint.LintOptions;
import modeldiff.lint.LintReport;
import modeldiff.lint.Linter;
import modeldiff.lint.Severity;
import modeldiff.model.Model;
import modeldiff.report.HtmlReport;
import modeldiff.report.RunInfo;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The checks a new release should pass before anyone trusts a stack with it, as a list the JUnit suite
 * (ModelReleaseTest) and `modeldiff check` both run:
 * lint has no error; every implementation available here stays within its precision's band of the float64
 * reference at every probe; no NaN/Inf anywhere; every trace shipped beside the release (e.g. the authors' own
 * bf16 run) matches our faithful pass for its precision and the hunt finds nothing to explain; an HTML report.
 * A failing check whose id is accepted in the release's baseline file passes with its reason printed.
 */
public final class ReleaseChecks {
    /** Implementations tried when present on this machine, in order. */
    public static final List<String> IMPLEMENTATIONS = List.of("lowp:fp32", "lowp:bf16", "lowp:fp16", "torch:fp32", "torch:fp16",
            "cuda:fp32", "cuda:bf16");

    /** A check that does not apply here (implementation missing on this machine, no traces shipped). */
    public static final class Skipped extends RuntimeException {
        public Skipped(String why) {
            super(why);
        }
    }

    /** A failed check: the message names the probe where it went wrong and, when the hunt could, the cause. */
    public static final class Failure extends AssertionError {
        public Failure(String message) {
            super(message);
        }
    }

    public record Check(String id, String description, Runnable body) {
    }

    private final Path modelDir;
    private final String release;
    private final Path tracesDir;
    private final Predicate<String> traceFilter;
    private final Path reportDir;
    private final Baseline baseline;
    private Model model;
    private ForwardInput input;
    private Trace reference;
    private final Map<String, Trace> runs = new LinkedHashMap<>();

    public ReleaseChecks(Path modelDir, Path tracesDir, Predicate<String> traceFilter, Path reportDir, Baseline baseline) {
        this.modelDir = modelDir;
        this.release = releaseName(modelDir);
        this.tracesDir = tracesDir;
        this.traceFilter = traceFilter;
        this.reportDir = reportDir;
        this.baseline = baseline;
    }

    /** "fixtures/gemma/model" → "gemma"; any other folder → its own name. */
    public static String releaseName(Path modelDir) {
        Path abs = modelDir.toAbsolutePath().normalize();
        Path name = abs.getFileName();
        if (name != null && name.toString().equals("model") && abs.getParent() != null) return abs.getParent().getFileName().toString();
        return name == null ? abs.toString() : name.toString();
    }

    public String release() {
        return release;
    }

    /** Traces shipped with a release: a "traces" folder beside the model folder, unless given. */
    public static Path defaultTracesDir(Path modelDir) {
        Path abs = modelDir.toAbsolutePath().normalize();
        return abs.getParent() == null ? null : abs.getParent().resolve("traces");
    }

    public List<Check> checks() {
        List<Check> out = new ArrayList<>();
        out.add(check("lint", "lint reports no error", this::lint));
        for (String impl : IMPLEMENTATIONS)
            out.add(check("impl:" + impl, impl + " stays within its precision band of the float64 reference", () -> implementation(impl)));
        out.add(check("nonfinite", "no NaN/Inf in any implementation's probes", this::nonFinite));
        for (Path t : traces())
            out.add(check("trace:" + t.getFileName(), "shipped trace " + t.getFileName() + " matches our pass for its precision; the hunt finds nothing",
                    () -> shippedTrace(t)));
        out.add(check("report", "HTML report written to " + reportDir, this::report));
        return out;
    }

    private Check check(String id, String description, Runnable body) {
        return new Check(id, description, () -> {
            try {
                body.run();
            } catch (Failure f) {
                String reason = baseline.reason(release, id);
                if (reason == null) throw f;
                System.out.println("[" + release + "] " + id + ": accepted deviation (" + reason + "): " + f.getMessage());
            }
        });
    }

    private synchronized Model model() {
        if (model == null) {
            model = Model.open(modelDir);
            // The implementations run on a shipped trace's tokens when there is one at position 0 (long-position traces
            // are checked with their own input); otherwise on fixed tokens.
            input = new ForwardInput(defaultTokens(model), 0);
            for (Path p : traces()) {
                Trace t = TraceFiles.read(p);
                if (t.positionOffset() == 0) {
                    input = new ForwardInput(t.tokens(), 0);
                    break;
                }
            }
            reference = Implementations.create("reference").run(model, input, ProbeLevel.ALL);
        }
        return model;
    }

    static int[] defaultTokens(Model m) {
        int n = 16, vocab = m.config.vocabSize;
        int[] ids = new int[n];
        int start = 0;
        if (!m.config.bosTokenIds.isEmpty()) ids[start++] = m.config.bosTokenIds.get(0);
        for (int i = start; i < n; i++) ids[i] = (int) ((i * 7919L + 13) % vocab);
        return ids;
    }

    private void lint() {
        LintReport r = Linter.lint(modelDir, LintOptions.defaults().withNonfinite(false));
        List<String> errors = new ArrayList<>();
        for (Finding f : r.findings()) if (f.severity() == Severity.ERROR) errors.add(f.rule() + ": " + f.message());
        if (!errors.isEmpty()) throw new Failure("lint errors: " + String.join("; ", errors));
    }

    private void implementation(String spec) {
        Model m = model();
        ForwardPass pass;
        Trace t;
        try {
            pass = Implementations.create(spec);
            t = pass.run(m, input, ProbeLevel.ALL);
        } catch (RuntimeException | LinkageError e) {
            if (isUnavailable(e)) throw new Skipped(spec + " is not available here: " + e.getMessage());
            throw e;
        }
        runs.put(spec, t);
        // lowp defines the measured bands, so it is held to the fixed table instead of to itself.
        NoiseFloor floor = spec.startsWith("lowp:") ? TableNoiseFloor.provisionalDefault()
                : new MeasuredNoiseFloor(m, input, MeasuredNoiseFloor.Against.FLOAT64_REFERENCE);
        Comparison c = Comparison.run(new Comparison.Side("reference", reference), List.of(new Comparison.Side(spec, t)), floor, null);
        Comparison.CandidateResult r = c.candidates().get(0);
        RoutingAgreement routing = RoutingAgreement.of(reference, t);
        if (r.excess() && !routing.complete() && routing.onlyNearTies()) {
            // A MoE token sent to another expert at a near-tie is rounding, not a bug: judge the run on the
            // reference's routing (forced by its expert choices alone); the flips are the check's note.
            Trace forced = pass.run(m, ForwardInput.forcedBy(RoutingAgreement.choicesOf(reference)), ProbeLevel.ALL);
            r = Comparison.run(new Comparison.Side("reference", reference), List.of(new Comparison.Side(spec, forced)), floor, null)
                    .candidates().get(0);
            if (!r.excess()) return;
        }
        if (r.excess()) throw new Failure(spec + " " + r.verdict() + huntNote(t));
    }

    private static boolean isUnavailable(Throwable e) {
        String msg = String.valueOf(e.getMessage());
        return msg.contains("unavailable") || msg.contains("not available") || msg.contains("cannot load")
                || msg.contains("does not implement") || e instanceof UnsatisfiedLinkError;
    }

    private void nonFinite() {
        model();
        List<String> bad = new ArrayList<>();
        Map<String, Trace> all = new LinkedHashMap<>();
        all.put("reference", reference);
        all.putAll(runs);
        for (Map.Entry<String, Trace> e : all.entrySet())
            for (Trace.Probe p : e.getValue().probes().values()) {
                long n = 0;
                for (double v : p.data()) if (!Double.isFinite(v)) n++;
                if (n > 0) bad.add(e.getKey() + " " + p.name() + " (" + n + " values)");
            }
        if (!bad.isEmpty()) throw new Failure("NaN/Inf in: " + String.join(", ", bad));
    }

    private void shippedTrace(Path file) {
        Model m = model();
        Trace target = TraceFiles.read(file);
        Hunt.Result h = Hunt.run(m, target, null, null, s -> { });
        if (h.verdict() != Hunt.Verdict.MATCH) {
            String first = h.baseline().firstExcessProbe();
            throw new Failure(file.getFileName() + " (" + target.dtype() + ") does not match " + h.base()
                    + (first == null ? "" : ": diverges first at " + first) + "; hunt: " + h.sentence());
        }
    }

    /** When an implementation drifts, say which catalog fix would explain it (if any). */
    private String huntNote(Trace t) {
        try {
            Hunt.Result h = Hunt.run(model(), t, null, null, s -> { });
            return h.verdict() == Hunt.Verdict.EXPLAINED ? "; hunt: " + h.sentence() : "";
        } catch (RuntimeException e) {
            return "";
        }
    }

    private void report() {
        model();
        if (runs.isEmpty()) throw new Skipped("no implementation ran");
        List<Comparison.Side> sides = new ArrayList<>();
        runs.forEach((k, v) -> sides.add(new Comparison.Side(k, v)));
        Comparison c = Comparison.run(new Comparison.Side("reference", reference), sides, TableNoiseFloor.provisionalDefault(), null);
        try {
            Files.createDirectories(reportDir);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        HtmlReport.write(c, new RunInfo(List.of("ModelReleaseTest", modelDir.toString()), RunInfo.versions("0.1.0"), model.config),
                new HtmlReport.Headline("modeldiff release check: " + release, List.of("every implementation available here against the float64 reference"), c.anyExcess()),
                List.of(), reportDir.resolve(release + ".html"));
    }

    private List<Path> traces() {
        if (tracesDir == null || !Files.isDirectory(tracesDir)) return List.of();
        try (Stream<Path> s = Files.list(tracesDir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
                    .filter(p -> traceFilter.test(p.getFileName().toString())).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }
}
