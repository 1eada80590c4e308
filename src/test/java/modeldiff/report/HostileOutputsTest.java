package modeldiff.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.compare.Comparison;
import modeldiff.compare.SyntheticTraces;
import modeldiff.compare.TableNoiseFloor;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Strings from model files in the outputs other than the page: the JSON report keeps them exactly (as JSON strings,
 * so parsing gives back the same text) and the SVG chart's labels escape them as XML.
 */
class HostileOutputsTest {
    static final String XSS = "<script>window.__pwned=1</script>\"><img src=x onerror=alert(1)>&amp;\u2028\n";

    @TempDir
    Path tmp;

    private Comparison hostile() {
        Trace ref = SyntheticTraces.reference(2, 3);
        Trace t = new Trace(XSS, "float32", XSS, ref.tokens(), 0);
        for (Trace.Probe p : ref.probes().values()) t.put(p.name(), p.cols(), p.data());
        t.put("layers.0." + XSS, 1, new double[ref.tokens().length]);
        t.putExtra("planted", XSS);
        return Comparison.run(new Comparison.Side("ref" + XSS, ref), List.of(new Comparison.Side("cand/" + XSS, t)),
                TableNoiseFloor.provisionalDefault(), null);
    }

    @Test
    void jsonReportKeepsHostileStringsExactly() throws Exception {
        ModelConfig config = ModelConfig.load(TinyModel.write(tmp.resolve("m"), XSS));
        RunInfo run = new RunInfo(List.of("modeldiff", "compare", "--candidate", XSS), RunInfo.versions("test"), config);
        String json = ReportJson.toJson(hostile(), run);
        JsonNode root = new ObjectMapper().readTree(json);
        List<String> strings = new ArrayList<>();
        collect(root, strings);
        long exact = strings.stream().filter(s -> s.contains(XSS)).count();
        assertTrue(exact >= 3, "hostile strings round-trip exactly through the JSON: " + exact);
        assertFalse(json.contains("\n<script"), "control characters are escaped inside JSON strings");
    }

    @Test
    void svgChartEscapesLabels() {
        String svg = Charts.svg(Charts.layerChart(hostile()), 800, 400);
        String lower = svg.toLowerCase(Locale.ROOT);
        assertFalse(lower.contains("<script"), "a raw script tag in the SVG");
        assertFalse(lower.contains("<img"), "a raw img tag in the SVG");
        assertTrue(svg.contains("&lt;script&gt;") || !svg.contains("script"), "labels are XML-escaped");
    }

    private static void collect(JsonNode n, List<String> out) {
        if (n.isTextual()) out.add(n.asText());
        n.forEach(c -> collect(c, out));
        n.fieldNames().forEachRemaining(out::add);
    }
}
