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
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.forward.cuda.CudaRuntime;
import modeldiff.forward.torch.TorchRuntime;
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
 * bf16 run) matches our faithful pass for its precision and the hunt finds nothing to explain. {@link #run} turns a
 * check into an {@link Outcome}; {@link #writeReport} writes the HTML report of all outcomes. A failing check whose id
 * is accepted in the release's baseline file is ACCEPTED, with its reason.
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

    /**
     * A failed check: the message names the probe where it went wrong and, when the hunt could, the cause. The parts
     * are kept apart for the report; {@code hunt} is the hunt's result when one ran (null otherwise).
     */
    public static final class Failure extends AssertionError {
        private final String firstDivergence;
        private final transient Hunt.Result hunt;

        public Failure(String message) {
            this(message, null, null);
        }

        public Failure(String message, String firstDivergence, Hunt.Result hunt) {
            super(message);
            this.firstDivergence = firstDivergence;
            this.hunt = hunt;
        }

        public String firstDivergence() {
            return firstDivergence;
        }

        public Hunt.Result hunt() {
            return hunt;
        }
    }

    public record Check(String id, String description, Runnable body) {
    }

    /** PASS; FAIL; SKIP (unavailable here by design); ACCEPTED (failed, but the release's baseline accepts it). */
    public enum Status { PASS, FAIL, SKIP, ACCEPTED }

    /** What one check came to. {@code message} says why for every status but PASS; {@code failure} is set for FAIL and ACCEPTED. */
    public record Outcome(Check check, Status status, String message, Failure failure) {
    }

    private final Path modelDir;
    private final String release;
    private final Path tracesDir;
    private final Predicate<String> traceFilter;
    private final Path reportDir;
    private final Baseline baseline;
    private Model model;
    private ForwardInput input;
    /** Ids the user chose (`check --text ...`), run instead of a shipped trace's or the fixed default tokens. */
    private int[] givenTokens;
    private Trace reference;
    private final Map<String, Trace> runs = new LinkedHashMap<>();
    private LintReport lintReport;

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

    /** The checks in the order they run; the report is written afterwards from their outcomes ({@link #writeReport}). */
    public List<Check> checks() {
        List<Check> out = new ArrayList<>();
        out.add(new Check("lint", "lint reports no error", this::lint));
        for (String impl : IMPLEMENTATIONS)
            out.add(new Check("impl:" + impl, impl + " stays within its precision band of the float64 reference", () -> implementation(impl)));
        out.add(new Check("nonfinite", "no NaN/Inf in any implementation's probes", this::nonFinite));
        for (Path t : traces())
            out.add(new Check("trace:" + t.getFileName(), "shipped trace " + t.getFileName() + " matches our pass for its precision; the hunt finds nothing",
                    () -> shippedTrace(t)));
        return out;
    }

    /**
     * Runs one check. Only {@link Skipped} (unavailable here by design) is a skip; a {@link Failure} the baseline
     * accepts is ACCEPTED; any other exception is a FAIL that names it, never a skip.
     */
    public Outcome run(Check c) {
        Failure f;
        try {
            c.body().run();
            return new Outcome(c, Status.PASS, null, null);
        } catch (Skipped s) {
            return new Outcome(c, Status.SKIP, s.getMessage(), null);
        } catch (Failure e) {
            f = e;
        } catch (RuntimeException e) {
            f = new Failure("error while checking: " + e);
            f.initCause(e);
        }
        String reason = baseline.reason(release, c.id());
        return reason == null ? new Outcome(c, Status.FAIL, f.getMessage(), f)
                : new Outcome(c, Status.ACCEPTED, "accepted deviation (" + reason + "): " + f.getMessage(), f);
    }

    private synchronized Model model() {
        if (model == null) {
            model = Model.open(modelDir);
            // The implementations run on a shipped trace's tokens when there is one at position 0 (long-position traces
            // are checked with their own input); otherwise on fixed tokens.
            input = new ForwardInput(givenTokens != null ? givenTokens
                    : ForwardInput.defaultTokens(model.config, ForwardInput.DEFAULT_LENGTH), 0);
            for (Path p : givenTokens != null ? List.<Path>of() : traces()) {
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

    /** Runs the implementation checks on these ids (e.g. a text through the release's tokenizer). */
    public ReleaseChecks useTokens(int[] ids) {
        this.givenTokens = ids == null ? null : ids.clone();
        return this;
    }

    private void lint() {
        LintReport r = Linter.lint(modelDir, LintOptions.defaults().withNonfinite(false));
        lintReport = r;
        List<String> errors = new ArrayList<>();
        for (Finding f : r.findings()) if (f.severity() == Severity.ERROR) errors.add(f.rule() + ": " + f.message());
        if (!errors.isEmpty()) throw new Failure("lint errors: " + String.join("; ", errors));
    }

    private void implementation(String spec) {
        Model m = model();
        String unavailable = unavailableHere(spec);
        if (unavailable != null) throw new Skipped(spec + " is not available here: " + unavailable);
        if (spec.startsWith("cuda:") && m.family.moe != null)     // by design until the cuda pass has experts
            throw new Skipped(spec + " does not implement the " + m.family + " family (mixture of experts) yet");
        ForwardPass pass = Implementations.create(spec);
        Trace t = pass.run(m, input, ProbeLevel.ALL);
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
        if (r.excess()) throw new Failure(spec + " " + r.verdict() + huntNote(t),
                r.firstDivergence() == null ? null : r.firstDivergence().probe().name(), null);
    }

    /** Why {@code spec} cannot run on this machine by design (no native library, no GPU), or null when it can. */
    static String unavailableHere(String spec) {
        if (spec.startsWith("torch:")) return TorchRuntime.unavailableReason();
        if (spec.startsWith("cuda:")) return CudaRuntime.unavailableReason();
        return null;
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
                    + (first == null ? "" : ": diverges first at " + first) + "; hunt: " + h.sentence(), first, h);
        }
    }

    /** When an implementation drifts, say which catalog fix would explain it (if any); a hunt error fails the check. */
    private String huntNote(Trace t) {
        Hunt.Result h = Hunt.run(model(), t, null, null, s -> { });
        return h.verdict() == Hunt.Verdict.EXPLAINED ? "; hunt: " + h.sentence() : "";
    }

    /**
     * The release's HTML report: the verdict as its title; every check with its status and why; each failing trace's
     * first divergence and the hunt's explanation; the lint findings; then every implementation that ran against the
     * float64 reference. Returns the file written ({@code RELEASE.html} in the report folder).
     */
    public Path writeReport(List<Outcome> outcomes) {
        Path file = reportDir.resolve(release + ".html");
        Comparison c = null;
        if (!runs.isEmpty()) {
            List<Comparison.Side> sides = new ArrayList<>();
            runs.forEach((k, v) -> sides.add(new Comparison.Side(k, v)));
            c = Comparison.run(new Comparison.Side("reference", reference), sides, TableNoiseFloor.provisionalDefault(), null);
        }
        try {
            Files.createDirectories(reportDir);
        } catch (IOException e) {
            throw new BadInputException(reportDir + ": cannot create the report folder: " + e.getMessage());
        }
        RunInfo run = new RunInfo(List.of("modeldiff", "check", "--model", modelDir.toString()), RunInfo.versions("0.1.0"),
                model == null ? null : model.config);
        HtmlReport.write(c, run, CheckReport.headline(release, outcomes), CheckReport.sections(outcomes, lintReport), file);
        return file;
    }

    /** The shipped traces; none when there is no traces folder, an error when it is there but cannot be read. */
    private List<Path> traces() {
        if (tracesDir == null || !Files.exists(tracesDir)) return List.of();
        try (Stream<Path> s = Files.list(tracesDir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
                    .filter(p -> traceFilter.test(p.getFileName().toString())).sorted().toList();
        } catch (IOException e) {
            throw new BadInputException(tracesDir + ": cannot list the traces folder: " + e.getMessage());
        }
    }
}
