package modeldiff.hunt;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.compare.Comparison;
import modeldiff.report.HtmlReport;
import modeldiff.report.RunInfo;
import modeldiff.trace.Trace;
import modeldiff.util.AtomicFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The hunt's outputs: JSON (docs/hunt.md has the schema) and an HTML report with one line per tried fix set. */
public final class HuntReport {
    /** Fix sets drawn in the report's chart besides the baseline and the best. */
    public static final int CHART_SETS = 5;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private HuntReport() {
    }

    public static ObjectNode json(Hunt.Result r, String targetLabel, List<String> command) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", "modeldiff-hunt/1");
        root.put("verdict", r.verdict().id());
        root.put("sentence", r.sentence());
        root.put("target", targetLabel);
        root.put("base", r.base());
        root.put("precision", r.precision().id());
        root.set("baseline", attempt(r.baseline()));
        root.set("best", attempt(r.best()));
        ArrayNode eq = root.putArray("equivalent");
        for (List<String> e : r.equivalent()) eq.add(JSON.valueToTree(e));
        ArrayNode ex = root.putArray("explanations");
        for (Hunt.Attempt a : r.explanations().subList(0, Math.min(20, r.explanations().size()))) ex.add(attempt(a));
        root.set("candidates", JSON.valueToTree(r.candidates()));
        root.set("kept", JSON.valueToTree(r.kept()));
        root.put("runs", r.runs());
        root.put("pruned", r.pruned());
        root.put("seconds", r.seconds());
        root.put("forward_seconds", r.forwardSeconds());
        root.put("cost_in_forwards", r.costInForwards());
        root.put("noise_floor", r.floor().describe());
        root.set("command", JSON.valueToTree(command));
        return root;
    }

    private static ObjectNode attempt(Hunt.Attempt a) {
        ObjectNode o = JSON.createObjectNode();
        o.set("fixes", JSON.valueToTree(a.fixes()));
        o.put("matches", a.matches());
        putNumber(o, "worst_log_l2", a.worst());
        putNumber(o, "excess", a.excess());
        o.put("first_excess_probe", a.firstExcessProbe());
        if (a.pruned()) o.put("stopped_at", a.stoppedAt());
        // null: the fixes hold everywhere; else where the target needs them (-1 the embedding, "head" the final norm)
        if (a.scope() == null) o.putNull("scope");
        else {
            var sc = o.putArray("scope");
            for (int l : a.scope()) {
                if (l == Hunt.HEAD) sc.add("head");
                else sc.add(l);
            }
        }
        ObjectNode per = o.putObject("per_probe");
        for (Map.Entry<String, Double> e : a.perProbe().entrySet()) putNumber(per, e.getKey(), e.getValue());
        return o;
    }

    /** JSON has no infinities: a non-finite error (NaN/Inf in the run) is written as null. */
    private static void putNumber(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) o.put(key, v);
        else o.putNull(key);
    }

    public static void writeJson(Hunt.Result r, String targetLabel, List<String> command, Path file) {
        try {
            AtomicFiles.writeString(file, JSON.writeValueAsString(json(r, targetLabel, command)));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The comparison behind the chart: the target as reference, one candidate per drawn fix set. */
    public static Comparison chartComparison(Hunt.Result r, String targetLabel, Trace target) {
        List<Comparison.Side> sides = new ArrayList<>();
        sides.add(new Comparison.Side(label(r.baseline(), r.base()), r.baseline().trace()));
        if (r.best() != r.baseline()) sides.add(new Comparison.Side(label(r.best(), r.base()) + " (chosen)", r.best().trace()));
        for (Hunt.Attempt a : r.explanations()) {
            if (sides.size() >= CHART_SETS + 2) break;
            if (a == r.best() || a == r.baseline() || a.trace() == null) continue;   // pruned, or dropped for memory
            sides.add(new Comparison.Side(label(a, r.base()), a.trace()));
        }
        return Comparison.run(new Comparison.Side(targetLabel, target), sides, r.floor(), null);
    }

    static String label(Hunt.Attempt a, String base) {
        return a.fixes().isEmpty() ? base + " (no fix)" : base + " + " + String.join(" + ", a.fixes());
    }

    public static void writeHtml(Hunt.Result r, String targetLabel, Trace target, RunInfo run, Path file) {
        Comparison cmp = chartComparison(r, targetLabel, target);
        List<String> lines = new ArrayList<>();
        lines.add(r.sentence());
        if (!r.equivalent().isEmpty())
            // Teacher-forced, candidates run only from the first to the last layer where the base run has excess
            // (the rest is the base run's), so "identical" is claimed for those layers only.
            lines.add("Indistinguishable on this input: " + r.equivalent() + (r.teacherForced()
                    ? " give bit-identical runs in the layers where the target differs from the base run."
                    : " give bit-identical runs."));
        List<List<String>> rows = new ArrayList<>();
        for (Hunt.Attempt a : r.explanations().subList(0, Math.min(15, r.explanations().size())))
            rows.add(List.of(a.fixes().isEmpty() ? "(none)" : String.join(", ", a.fixes()), a.matches() ? "yes" : "no",
                    a.pruned() ? "-" : String.format("%.2f", a.worst()), a.pruned() ? "-" : String.format("%.2f", a.excess()),
                    a.pruned() ? a.stopReason()
                            : a.firstExcessProbe() == null ? "-" : a.firstExcessProbe()));
        var table = new HtmlReport.Section("Fix sets tried, best first",
                List.of(r.runs() + " runs of " + r.base() + (r.pruned() > 0 ? " (" + r.pruned() + " stopped early)" : "") + " in " + String.format("%.1f", r.seconds()) + " s ("
                        + String.format("%.1f", r.costInForwards()) + " forwards' time). A set explains the target when every probe"
                        + " is within the noise floor; among those the smallest wins, and an extra fix must bring the worst probe "
                        + Hunt.CLEAR + " decade closer to be added.", "Noise floor: " + r.floor().describe()),
                List.of("fixes", "matches", "worst log-L2", "excess (decade-probes)", "first excess probe"), rows);
        List<HtmlReport.Section> sections = new ArrayList<>();
        sections.add(table);
        for (String f : r.best().fixes()) {
            Catalog.Entry e = Catalog.entry(f);
            if (e != null) sections.add(HtmlReport.Section.text("Fix " + f, e.meaning() + ".",
                    e.source() == null ? "Real-world instance: see docs/fix-sources.md." : "Real-world instance: " + e.source()));
        }
        HtmlReport.write(cmp, run, new HtmlReport.Headline("modeldiff hunt: " + r.verdict().id(), lines,
                r.verdict() != Hunt.Verdict.MATCH), sections, file);
    }
}
