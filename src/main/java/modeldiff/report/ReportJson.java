package modeldiff.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.compare.Comparison;
import modeldiff.compare.Metrics;
import modeldiff.compare.ProbeId;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import modeldiff.util.AtomicFiles;

import java.nio.file.Path;
import java.util.List;

/**
 * The machine-readable report, schema "modeldiff-report/1" (docs/report-json.md).
 * <p>
 * JSON has no NaN or Infinity, and a writer that emits them produces files other tools reject. A non-finite number
 * is therefore written as null and named in the enclosing object's {@code non_finite_fields}
 * ({@code {"log_l2": "Infinity"}}, or {@code "per_token_log_l2[3]": "NaN"} for array entries), so nothing is lost.
 */
public final class ReportJson {
    public static final String FORMAT = "modeldiff-report/1";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ReportJson() {
    }

    public static ObjectNode toTree(Comparison cmp, RunInfo run) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("verdict", cmp.verdict());
        root.put("any_excess", cmp.anyExcess());
        ObjectNode cmd = root.putObject("command");
        cmd.put("line", run.commandLine());
        ArrayNode argv = cmd.putArray("argv");
        run.command().forEach(argv::add);
        ObjectNode versions = root.putObject("versions");
        run.versions().forEach(versions::put);
        root.set("model", run.model() == null ? null : model(run.model(), run.modelLabel()));

        Trace ref = cmp.reference().trace();
        ObjectNode input = root.putObject("input");
        ArrayNode toks = input.putArray("tokens");
        for (int t : ref.tokens()) toks.add(t);
        input.put("position_offset", ref.positionOffset());
        input.put("num_layers", cmp.numLayers());

        ObjectNode nf = root.putObject("noise_floor");
        nf.put("source", cmp.noiseFloor().describe());
        nf.put("provisional", cmp.noiseFloor().provisional());
        root.set("local_error", cmp.localError() == null ? null : JSON.getNodeFactory().textNode(cmp.localError().describe()));

        root.set("reference", side(cmp.reference()));
        ArrayNode cands = root.putArray("candidates");
        for (int i = 0; i < cmp.candidates().size(); i++) {
            ObjectNode co = candidate(cmp.candidates().get(i), cmp.numLayers());
            co.set("routing", routing(modeldiff.compare.RoutingAgreement.ofCandidate(cmp, i)));
            cands.add(co);
        }
        return root;
    }

    public static String toJson(Comparison cmp, RunInfo run) {
        try {
            return JSON.writeValueAsString(toTree(cmp, run)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void write(Comparison cmp, RunInfo run, Path file) {
        AtomicFiles.writeString(file, toJson(cmp, run));
    }

    /** Per MoE layer: tokens, agreeing, agreement, and each flip with both expert sets and the margin; null if dense. */
    private static ArrayNode routing(modeldiff.compare.RoutingAgreement r) {
        if (r.isEmpty()) return null;
        ArrayNode layers = JSON.createArrayNode();
        for (var l : r.layers()) {
            ObjectNode lo = layers.addObject();
            lo.put("layer", l.layer());
            lo.put("tokens", l.tokens());
            lo.put("agreeing", l.agreeing());
            num(lo, "agreement", l.agreement());
            ArrayNode flips = lo.putArray("flips");
            for (var f : l.flips()) {
                ObjectNode fo = flips.addObject();
                fo.put("token", f.token());
                ArrayNode a = fo.putArray("reference_experts"), b = fo.putArray("candidate_experts");
                for (int e : f.reference()) a.add(e);
                for (int e : f.candidate()) b.add(e);
                num(fo, "margin", f.margin());
                num(fo, "router_logit_change", f.logitChange());
                fo.put("near_tie", f.nearTie());
            }
        }
        return layers;
    }

    private static ObjectNode side(Comparison.Side s) {
        ObjectNode o = JSON.createObjectNode();
        Trace t = s.trace();
        o.put("label", s.label());
        o.put("producer", t.producer());
        o.put("dtype", t.dtype());
        o.put("device", t.device());
        o.put("probes", t.probeNames().size());
        // Answer keys (what a fixture maker planted) are kept apart from the producer's metadata, labelled as such.
        ObjectNode extra = o.putObject("extra"), answer = o.putObject("answer_key");
        t.extra().forEach((k, v) -> (HtmlReport.ANSWER_KEYS.contains(k) ? answer : extra).put(k, v));
        return o;
    }

    private static ObjectNode candidate(Comparison.CandidateResult c, int numLayers) {
        ObjectNode o = side(c.side());
        o.put("precision", c.precision().id());
        o.put("verdict", c.verdict());
        o.put("excess", c.excess());
        if (c.firstDivergence() == null) {
            o.putNull("first_divergence");
        } else {
            Comparison.ProbeResult p = c.firstDivergence().probe();
            ObjectNode d = o.putObject("first_divergence");
            d.put("probe", p.name());
            d.put("where", p.id().describe());
            putAxis(d, p.id(), numLayers);
            if (p.id().subLayer() == null) d.putNull("sub_layer");
            else d.put("sub_layer", p.id().subLayer());
            num(d, "log_l2", p.metrics().logL2());
            num(d, "noise_floor", p.noiseFloor());
            num(d, "excess_decades", p.excessDecades());
            d.put("non_finite_values", p.metrics().nonFinite());
        }
        strings(o.putArray("missing_in_candidate"), c.missingInCandidate());
        strings(o.putArray("missing_in_reference"), c.missingInReference());
        if (c.logits() == null) {
            o.putNull("logits");
        } else {
            Metrics.LogitMetrics l = c.logits();
            ObjectNode lo = o.putObject("logits");
            num(lo, "kl_mean", l.klMean());
            num(lo, "kl_max", l.klMax());
            num(lo, "top1_agreement", l.top1Agreement());
            num(lo, "rms_delta_p_top", l.rmsDeltaPTop());
        }
        ArrayNode probes = o.putArray("probes");
        for (Comparison.ProbeResult p : c.probes()) {
            ObjectNode po = probes.addObject();
            Metrics.ProbeMetrics m = p.metrics();
            po.put("name", p.name());
            po.put("kind", p.id().kind().name().toLowerCase(java.util.Locale.ROOT));
            putAxis(po, p.id(), numLayers);
            if (p.id().subLayer() == null) po.putNull("sub_layer");
            else po.put("sub_layer", p.id().subLayer());
            po.put("status", p.status().id());
            po.put("failure", p.failure());
            num(po, "log_l2", m.logL2());
            num(po, "noise_floor", p.noiseFloor());
            num(po, "excess_decades", p.excessDecades());
            num(po, "nmse", m.nmse());
            num(po, "max_abs", m.maxAbs());
            num(po, "cosine", m.cosine());
            po.put("non_finite_values", m.nonFinite());
            po.put("identical", m.identical());
            po.put("elements", m.elements());
            if (p.localLogL2() == null) po.putNull("local_log_l2");
            else num(po, "local_log_l2", p.localLogL2());
            if (p.ulps() == null) po.putNull("ulps");
            else {
                // Same-precision teacher-forced comparison: differing elements and their distance in ulps.
                ObjectNode u = po.putObject("ulps");
                u.put("elements", p.ulps().elements());
                u.put("differing", p.ulps().differing());
                ObjectNode h = u.putObject("histogram");
                for (int i = 0; i < p.ulps().histogram().length; i++) h.put(modeldiff.compare.UlpDiff.BINS[i], p.ulps().histogram()[i]);
            }
            ArrayNode pt = po.putArray("per_token_log_l2");
            double[] v = p.perTokenLogL2(); // NaN (null + flag) for tokens with NaN/Inf in the candidate
            for (int i = 0; i < v.length; i++) {
                if (Double.isFinite(v[i])) pt.add(v[i]);
                else {
                    pt.addNull();
                    flag(po, "per_token_log_l2[" + i + "]", v[i]);
                }
            }
        }
        return o;
    }

    /** "layer" is the position on the layer axis: embed −1, layer i, final_norm L, logits L+1; null for other probes. */
    private static void putAxis(ObjectNode o, ProbeId id, int numLayers) {
        Integer x = id.axis(numLayers);
        if (x == null) o.putNull("layer");
        else o.put("layer", x);
    }

    static ObjectNode model(ModelConfig c, String label) {
        ObjectNode o = JSON.createObjectNode();
        o.put("config_file", label != null ? label : c.file.toString());
        o.put("model_type", c.modelType);
        o.put("hidden_size", c.hiddenSize);
        o.put("num_layers", c.numLayers);
        o.put("num_heads", c.numHeads);
        o.put("num_kv_heads", c.numKvHeads);
        o.put("head_dim", c.headDim);
        o.put("intermediate_size", c.intermediateSize);
        o.put("vocab_size", c.vocabSize);
        o.put("activation", c.activationName);
        num(o, "norm_eps", c.normEps);
        o.put("tie_word_embeddings", c.tieWordEmbeddings);
        if (c.declaredDtype == null) o.putNull("declared_dtype");
        else o.put("declared_dtype", c.declaredDtype);
        // NaN here means "no soft-cap", not a computation gone wrong: plain null, no flag.
        if (Double.isNaN(c.attnSoftcap)) o.putNull("attn_softcap");
        else num(o, "attn_softcap", c.attnSoftcap);
        if (Double.isNaN(c.finalSoftcap)) o.putNull("final_softcap");
        else num(o, "final_softcap", c.finalSoftcap);
        strings(o.putArray("defaults_used"), c.defaultsUsed);
        return o;
    }

    private static void strings(ArrayNode a, List<String> values) {
        values.forEach(a::add);
    }

    /** A number, or null plus a flag when it has no JSON spelling. */
    static void num(ObjectNode o, String field, double v) {
        if (Double.isFinite(v)) {
            o.put(field, v);
        } else {
            o.putNull(field);
            flag(o, field, v);
        }
    }

    private static void flag(ObjectNode o, String field, double v) {
        ObjectNode flags = o.has("non_finite_fields") ? (ObjectNode) o.get("non_finite_fields") : o.putObject("non_finite_fields");
        flags.put(field, Double.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }

    /** Reads a number written by {@link #num}: the flag's value when the field is null and flagged. */
    public static double readNumber(com.fasterxml.jackson.databind.JsonNode o, String field) {
        com.fasterxml.jackson.databind.JsonNode v = o.get(field);
        if (v != null && v.isNumber()) return v.asDouble();
        com.fasterxml.jackson.databind.JsonNode f = o.path("non_finite_fields").get(field);
        if (f == null) throw new IllegalArgumentException("no number at '" + field + "'");
        return switch (f.asText()) {
            case "NaN" -> Double.NaN;
            case "Infinity" -> Double.POSITIVE_INFINITY;
            case "-Infinity" -> Double.NEGATIVE_INFINITY;
            default -> throw new IllegalArgumentException("bad non-finite flag '" + f.asText() + "' at '" + field + "'");
        };
    }
}
