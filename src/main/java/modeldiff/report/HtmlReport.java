package modeldiff.report;

import com.github.mustachejava.DefaultMustacheFactory;
import com.github.mustachejava.Mustache;
import modeldiff.compare.Comparison;
import modeldiff.compare.Metrics;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import modeldiff.util.AtomicFiles;

import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One self-contained HTML page per comparison: verdict first, then the pictures, then every number.
 * <p>
 * Everything shown that came from a model folder or a trace (labels, producers, probe names, config strings) is
 * untrusted. It reaches the page only through the template's {{...}} tags, which HTML-escape; the template uses no
 * unescaped {{{...}}} tag. The page also carries a Content-Security-Policy that forbids scripts and any fetch, and
 * embeds its pictures as data: URIs, so it can be mailed or attached to an issue as one file.
 */
public final class HtmlReport {
    public static final String TEMPLATE = "modeldiff/report/report.mustache";
    public static final int CHART_WIDTH = 1000, CHART_HEIGHT = 480;

    private HtmlReport() {
    }

    /**
     * A block of text and an optional table placed above the comparison (the hunt's explanation, the demo's story).
     * Every string is escaped like the rest of the report.
     */
    public record Section(String title, List<String> paragraphs, List<String> header, List<List<String>> rows) {
        public static Section text(String title, String... paragraphs) {
            return new Section(title, List.of(paragraphs), List.of(), List.of());
        }
    }

    /** A banner above everything: the story's conclusion (bad = red). */
    public record Headline(String text, List<String> lines, boolean bad) {
    }

    public static String render(Comparison cmp, RunInfo run) {
        return render(cmp, run, null, List.of());
    }

    public static String render(Comparison cmp, RunInfo run, Headline headline, List<Section> sections) {
        Mustache m = new DefaultMustacheFactory().compile(TEMPLATE);
        StringWriter out = new StringWriter();
        Map<String, Object> v = cmp == null ? runView(run) : view(cmp, run);
        // The page is titled by its headline when it has one (hunt, demo, check); the comparison is then one part of it.
        String verdict = cmp == null ? null : (String) v.get("title");
        v.put("pageTitle", headline != null ? headline.text() : "modeldiff compare: " + verdict);
        v.put("bannerTitle", headline != null ? "Comparison: " + verdict : "modeldiff compare: " + verdict);
        if (headline != null) {
            v.put("headline", headline.text());
            v.put("headlineLines", headline.lines());
            v.put("headlineBad", headline.bad());
        }
        List<Map<String, Object>> secs = new ArrayList<>();
        for (Section s : sections) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("title", s.title());
            o.put("paragraphs", s.paragraphs());
            o.put("hasTable", !s.rows().isEmpty());
            o.put("header", s.header());
            List<Map<String, Object>> rows = new ArrayList<>();
            for (List<String> r : s.rows()) rows.add(Map.of("cells", r));
            o.put("rows", rows);
            secs.add(o);
        }
        v.put("sections", secs);
        m.execute(out, v);
        return out.toString();
    }

    public static void write(Comparison cmp, RunInfo run, java.nio.file.Path file) {
        AtomicFiles.writeString(file, render(cmp, run));
    }

    public static void write(Comparison cmp, RunInfo run, Headline headline, List<Section> sections, java.nio.file.Path file) {
        AtomicFiles.writeString(file, render(cmp, run, headline, sections));
    }

    /** Trace metadata keys that hold the answer (what a fixture maker planted): shown only under a visible label. */
    public static final java.util.Set<String> ANSWER_KEYS = java.util.Set.of("planted", "planted_note");
    /** How an answer key is labelled in the HTML report. */
    public static final String ANSWER_KEY_LABEL = "answer key (set by whoever made the trace, never read by modeldiff): ";

    /** A page without a comparison (a release check where no implementation ran): model and provenance only. */
    private static Map<String, Object> runView(RunInfo run) {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("hasComparison", false);
        v.put("model", run.model() == null ? null : model(run.model(), run.modelLabel()));
        v.put("commandLine", run.commandLine());
        List<Map<String, Object>> versions = new ArrayList<>();
        run.versions().forEach((k, val) -> versions.add(kv(k, val)));
        v.put("versions", versions);
        return v;
    }

    /** The template's data: plain maps and lists of pre-formatted strings, so the template holds no logic. */
    static Map<String, Object> view(Comparison cmp, RunInfo run) {
        Map<String, Object> v = runView(run);
        v.put("hasComparison", true);
        Trace ref = cmp.reference().trace();
        v.put("anyExcess", cmp.anyExcess());
        v.put("title", cmp.anyExcess() ? "excess error" : "no excess error");
        v.put("provisional", cmp.noiseFloor().provisional());
        v.put("noiseFloor", cmp.noiseFloor().describe());
        v.put("localError", cmp.localError() == null ? null : cmp.localError().describe());
        v.put("localLabel", cmp.localError() == null ? "local" : cmp.localError().label());
        List<String> names = Labels.shortLabels(cmp);
        Map<String, Object> refView = side(cmp.reference());
        refView.put("name", names.get(0));
        v.put("reference", refView);
        v.put("tokens", abbreviate(ref.tokens()));
        v.put("numTokens", ref.tokens().length);
        v.put("positionOffset", ref.positionOffset());
        v.put("layerChart", dataUri(Charts.png(Charts.layerChart(cmp), CHART_WIDTH, CHART_HEIGHT)));
        RoutingView.add(v, cmp);
        List<Map<String, Object>> cands = new ArrayList<>();
        for (int i = 0; i < cmp.candidates().size(); i++) {
            Map<String, Object> c = candidate(cmp, i);
            c.put("name", names.get(i + 1));
            cands.add(c);
        }
        v.put("candidates", cands);
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> versions = (List<Map<String, Object>>) v.get("versions");
        for (Comparison.Side s : sides(cmp)) versions.add(kv("producer of " + s.label(), s.trace().producer()));
        return v;
    }

    private static List<Comparison.Side> sides(Comparison cmp) {
        List<Comparison.Side> out = new ArrayList<>();
        out.add(cmp.reference());
        cmp.candidates().forEach(c -> out.add(c.side()));
        return out;
    }

    private static Map<String, Object> side(Comparison.Side s) {
        Map<String, Object> o = new LinkedHashMap<>();
        Trace t = s.trace();
        o.put("label", s.label());
        o.put("producer", t.producer());
        o.put("dtype", t.dtype());
        o.put("device", t.device());
        o.put("numProbes", t.probeNames().size());
        List<Map<String, Object>> extra = new ArrayList<>();
        t.extra().forEach((k, val) -> extra.add(kv(ANSWER_KEYS.contains(k) ? ANSWER_KEY_LABEL + k : k, val)));
        o.put("extra", extra);
        o.put("hasExtra", !extra.isEmpty());
        return o;
    }

    private static Map<String, Object> candidate(Comparison cmp, int index) {
        Comparison.CandidateResult c = cmp.candidates().get(index);
        Map<String, Object> o = side(c.side());
        o.put("index", index + 1);
        o.put("color", String.format("#%06x", Charts.color(index).getRGB() & 0xFFFFFF));
        o.put("precision", c.precision().id());
        o.put("verdict", c.verdict());
        o.put("excess", c.excess());
        o.put("heatmap", dataUri(Charts.png(Charts.heatmap(cmp, index), CHART_WIDTH, Charts.heatmapHeight(cmp))));
        // Keys present even when null: a section tag on a missing key would search the enclosing scopes instead.
        o.put("divergence", null);
        o.put("logits", null);
        if (c.firstDivergence() != null) {
            Comparison.ProbeResult p = c.firstDivergence().probe();
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("probe", p.name());
            d.put("where", p.id().describe());
            long nf = p.metrics().nonFinite();
            d.put("detail", nf > 0 ? nf + " NaN/Inf value" + (nf == 1 ? "" : "s") + " in the candidate"
                    : "log-L2 " + fixed(p.metrics().logL2(), 2) + " against a floor of " + fixed(p.noiseFloor(), 2)
                    + ": " + fixed(p.excessDecades(), 2) + " decades above");
            o.put("divergence", d);
        }
        if (c.logits() != null) {
            Metrics.LogitMetrics l = c.logits();
            int n = cmp.reference().trace().tokens().length;
            Map<String, Object> lo = new LinkedHashMap<>();
            lo.put("klMean", sci(l.klMean()));
            lo.put("klMax", sci(l.klMax()));
            lo.put("top1", fixed(100 * l.top1Agreement(), 1) + "% (" + Math.round(l.top1Agreement() * n) + " of " + n + " tokens)");
            lo.put("rmsDeltaP", sci(l.rmsDeltaPTop()));
            o.put("logits", lo);
        }
        o.put("missingInCandidate", String.join(", ", c.missingInCandidate()));
        o.put("missingInReference", String.join(", ", c.missingInReference()));
        o.put("hasMissing", !c.missingInCandidate().isEmpty() || !c.missingInReference().isEmpty());
        List<Map<String, Object>> rows = new ArrayList<>();
        for (Comparison.ProbeResult p : c.probes()) {
            Metrics.ProbeMetrics m = p.metrics();
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("name", p.name());
            r.put("sub", !p.id().isLayerLevel());
            r.put("excess", p.status() == Comparison.Status.EXCESS);
            r.put("status", p.failure() ? "excess (NaN/Inf)" : p.status().id());
            // The metric leaves NaN/Inf elements out; a number here would hide that the probe is broken.
            r.put("logL2", m.nonFinite() > 0 ? "NaN/Inf" : fixed(m.logL2(), 2));
            r.put("floor", fixed(p.noiseFloor(), 1));
            r.put("excessDecades", m.nonFinite() > 0 ? "—" : fixed(p.excessDecades(), 2));
            r.put("nmse", sci(m.nmse()));
            r.put("maxAbs", sci(m.maxAbs()));
            r.put("oneMinusCos", sci(1 - m.cosine()));
            r.put("identical", fixed(100 * m.identicalFraction(), 1) + "%");
            r.put("nonFinite", m.nonFinite());
            r.put("local", p.localLogL2() == null ? "—" : fixed(p.localLogL2(), 2));
            r.put("ulps", p.ulps() == null ? "—" : p.ulps().describe());
            rows.add(r);
        }
        o.put("probes", rows);
        return o;
    }

    private static Map<String, Object> model(ModelConfig c, String label) {
        List<Map<String, Object>> rows = new ArrayList<>();
        rows.add(kv("config", label != null ? label : c.file.toString()));
        rows.add(kv("model_type", c.modelType));
        rows.add(kv("shape", "hidden " + c.hiddenSize + ", layers " + c.numLayers + ", heads " + c.numHeads + " (kv "
                + c.numKvHeads + ", head_dim " + c.headDim + "), ffn " + c.intermediateSize + ", vocab " + c.vocabSize));
        rows.add(kv("activation", c.activationName));
        rows.add(kv("norm", c.family.norm + ", eps " + c.normEps));
        rows.add(kv("tied embeddings", String.valueOf(c.tieWordEmbeddings)));
        rows.add(kv("soft-caps", "attention " + (Double.isNaN(c.attnSoftcap) ? "none" : c.attnSoftcap)
                + ", final " + (Double.isNaN(c.finalSoftcap) ? "none" : c.finalSoftcap)));
        rows.add(kv("declared dtype", c.declaredDtype == null ? "not given" : c.declaredDtype));
        rows.add(kv("defaults taken", c.defaultsUsed.isEmpty() ? "none: every key came from config.json" : String.join("; ", c.defaultsUsed)));
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("rows", rows);
        return o;
    }

    private static Map<String, Object> kv(String k, Object v) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("key", k);
        o.put("value", String.valueOf(v));
        return o;
    }

    static String dataUri(byte[] png) {
        return "data:image/png;base64," + Base64.getEncoder().encodeToString(png);
    }

    private static String abbreviate(int[] ids) {
        if (ids.length <= 64) return Arrays.toString(ids);
        return Arrays.toString(Arrays.copyOf(ids, 64)).replace("]", ", … (" + ids.length + " tokens)]");
    }

    static String fixed(double v, int digits) {
        if (!Double.isFinite(v)) return nonFinite(v);
        return String.format(Locale.ROOT, "%." + digits + "f", v);
    }

    static String sci(double v) {
        if (!Double.isFinite(v)) return nonFinite(v);
        if (v == 0) return "0";
        return String.format(Locale.ROOT, "%.2e", v);
    }

    private static String nonFinite(double v) {
        return Double.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "−Inf";
    }
}
