package modeldiff.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.compare.Comparison;
import modeldiff.compare.Metrics;
import modeldiff.compare.SyntheticTraces;
import modeldiff.compare.TableNoiseFloor;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportJsonTest {
    @TempDir
    Path tmp;

    /** A reference with one all-zero probe, a candidate with a NaN, another with a planted deviation. */
    static Comparison awkward() {
        Trace ref = SyntheticTraces.edited(SyntheticTraces.reference(3, 1), "float64",
                (name, d) -> name.equals("layers.0.v") ? new double[d.length] : d);
        Trace nan = SyntheticTraces.edited(SyntheticTraces.reference(3, 1), "bfloat16", (name, d) -> {
            if (name.equals("layers.1.attn")) d[0] = Double.NaN;
            return d;
        });
        Trace planted = SyntheticTraces.perturbed(ref, "float32", "layers.2.mlp_act", 1e-2, 9);
        return Comparison.run(new Comparison.Side("ref.safetensors", ref),
                List.of(new Comparison.Side("nan.safetensors", nan), new Comparison.Side("planted.safetensors", planted)),
                TableNoiseFloor.provisionalDefault(), null);
    }

    static RunInfo run() {
        return new RunInfo(List.of("modeldiff", "compare", "--reference", "a b"), Map.of("modeldiff", "test"), null);
    }

    @Test
    void parsesBackStrictlyWithTheSameNumbers() throws Exception {
        Comparison cmp = awkward();
        Path file = tmp.resolve("r.json");
        ReportJson.write(cmp, run(), file);
        // Jackson's default parser rejects NaN/Infinity tokens: parsing at all proves the file is valid JSON.
        JsonNode root = new ObjectMapper().readTree(Files.readString(file));
        assertEquals(ReportJson.FORMAT, root.get("format").asText());
        assertEquals(cmp.verdict(), root.get("verdict").asText());
        assertTrue(root.get("any_excess").asBoolean());
        assertEquals("modeldiff compare --reference 'a b'", root.get("command").get("line").asText());
        assertTrue(root.get("local_error").isNull(), "no replay source: null, not a made-up value");
        assertTrue(root.get("model").isNull());
        assertEquals(3, root.get("input").get("num_layers").asInt());

        for (int ci = 0; ci < cmp.candidates().size(); ci++) {
            Comparison.CandidateResult c = cmp.candidates().get(ci);
            JsonNode jc = root.get("candidates").get(ci);
            assertEquals(c.verdict(), jc.get("verdict").asText());
            assertEquals(c.precision().id(), jc.get("precision").asText());
            assertEquals(c.probes().size(), jc.get("probes").size());
            for (int i = 0; i < c.probes().size(); i++) {
                Comparison.ProbeResult p = c.probes().get(i);
                JsonNode jp = jc.get("probes").get(i);
                Metrics.ProbeMetrics m = p.metrics();
                assertEquals(p.name(), jp.get("name").asText());
                assertEquals(p.status().id(), jp.get("status").asText());
                assertEquals(p.failure(), jp.get("failure").asBoolean());
                // Exact equality: the JSON must carry the very doubles computed, not rounded copies.
                assertEquals(m.logL2(), ReportJson.readNumber(jp, "log_l2"), 0, p.name());
                assertEquals(m.nmse(), ReportJson.readNumber(jp, "nmse"), 0, p.name());
                assertEquals(m.maxAbs(), ReportJson.readNumber(jp, "max_abs"), 0, p.name());
                assertEquals(m.cosine(), ReportJson.readNumber(jp, "cosine"), 0, p.name());
                assertEquals(p.noiseFloor(), ReportJson.readNumber(jp, "noise_floor"), 0, p.name());
                assertEquals(m.nonFinite(), jp.get("non_finite_values").asLong());
                assertTrue(jp.get("local_log_l2").isNull());
                double[] pt = p.perTokenLogL2();
                for (int t = 0; t < pt.length; t++) {
                    JsonNode v = jp.get("per_token_log_l2").get(t);
                    if (Double.isFinite(pt[t])) assertEquals(pt[t], v.asDouble(), 0);
                    else assertTrue(v.isNull() && jp.get("non_finite_fields").has("per_token_log_l2[" + t + "]"));
                }
            }
            Metrics.LogitMetrics l = c.logits();
            assertEquals(l.klMean(), ReportJson.readNumber(jc.get("logits"), "kl_mean"), 0);
            assertEquals(l.top1Agreement(), ReportJson.readNumber(jc.get("logits"), "top1_agreement"), 0);
        }
    }

    @Test
    void nonFiniteNumbersAreNullWithAFlag() throws Exception {
        JsonNode root = new ObjectMapper().readTree(ReportJson.toJson(awkward(), run()));
        // layers.0.v: the reference is all zeros and the candidate is not, so log-L2 is +∞.
        JsonNode zero = probe(root.get("candidates").get(0), "layers.0.v");
        assertTrue(zero.get("log_l2").isNull());
        assertEquals("Infinity", zero.get("non_finite_fields").get("log_l2").asText());
        assertEquals(Double.POSITIVE_INFINITY, ReportJson.readNumber(zero, "log_l2"));
        assertEquals("excess", zero.get("status").asText());
        assertTrue(zero.get("failure").asBoolean());

        JsonNode nan = probe(root.get("candidates").get(0), "layers.1.attn");
        assertEquals(1, nan.get("non_finite_values").asInt());
        assertTrue(nan.get("failure").asBoolean());
        // Token 0 holds the NaN: its per-token error is NaN, not the "identical" its finite elements alone would give.
        assertTrue(nan.get("per_token_log_l2").get(0).isNull());
        assertEquals("NaN", nan.get("non_finite_fields").get("per_token_log_l2[0]").asText());
        assertTrue(nan.get("per_token_log_l2").get(1).isNumber());

        JsonNode d = root.get("candidates").get(1).get("first_divergence");
        assertEquals("layers.2.mlp_act", d.get("probe").asText());
        assertEquals(2, d.get("layer").asInt());
        assertEquals("mlp_act", d.get("sub_layer").asText());
        assertEquals(3.5, d.get("excess_decades").asDouble(), 1e-9);
        // Ends of the layer axis: embed −1, final_norm L, logits L+1.
        JsonNode c0 = root.get("candidates").get(1);
        assertEquals(-1, probe(c0, "embed").get("layer").asInt());
        assertEquals(3, probe(c0, "final_norm").get("layer").asInt());
        assertEquals(4, probe(c0, "logits").get("layer").asInt());
        assertFalse(probe(c0, "embed").has("non_finite_fields"));
    }

    private static JsonNode probe(JsonNode candidate, String name) {
        for (JsonNode p : candidate.get("probes")) if (p.get("name").asText().equals(name)) return p;
        throw new AssertionError("no probe " + name);
    }
}
