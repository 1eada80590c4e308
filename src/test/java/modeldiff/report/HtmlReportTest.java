package modeldiff.report;

import modeldiff.compare.Comparison;
import modeldiff.compare.SyntheticTraces;
import modeldiff.compare.TableNoiseFloor;
import modeldiff.model.ModelConfig;
import modeldiff.trace.Trace;
import org.jfree.chart.JFreeChart;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HtmlReportTest {
    static final String XSS = "<script>alert(1)</script>";
    static final String ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;";
    static final byte[] PNG_MAGIC = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    @TempDir
    Path tmp;

    /** Hostile strings in every place a trace or config can carry one into the page. */
    private Comparison hostile() {
        Trace ref = SyntheticTraces.reference(2, 3);
        Trace t = new Trace(XSS, "float32", XSS, ref.tokens(), 0);
        for (Trace.Probe p : ref.probes().values()) t.put(p.name(), p.cols(), p.data());
        t.put("layers.0." + XSS, 1, new double[ref.tokens().length]);
        t.putExtra("planted", XSS);
        return Comparison.run(new Comparison.Side("ref.safetensors", ref), List.of(new Comparison.Side("dir/" + XSS, t)),
                TableNoiseFloor.provisionalDefault(), null);
    }

    @Test
    void untrustedStringsAreEscapedAndThePageCannotRunScripts() {
        ModelConfig config = ModelConfig.load(TinyModel.write(tmp.resolve("m"), XSS));
        RunInfo run = new RunInfo(List.of("modeldiff", "compare", "--candidate", XSS), RunInfo.versions("test"), config);
        String html = HtmlReport.render(hostile(), run);
        assertFalse(html.toLowerCase(Locale.ROOT).contains("<script"), "a raw script tag reached the page");
        // From the config (declared dtype), the trace (producer, device, extra, probe name), the label and the command.
        int count = html.split(Pattern.quote(ESCAPED), -1).length - 1;
        assertTrue(count >= 6, "escaped occurrences: " + count);
        assertTrue(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"));
        assertFalse(html.contains("<link") || html.contains("http://") || html.contains("https://"), "the page must be self-contained");
    }

    @Test
    void picturesAreEmbeddedPngs() {
        String html = HtmlReport.render(ReportJsonTest.awkward(), ReportJsonTest.run());
        Matcher m = Pattern.compile("<img src=\"([^\"]*)\"").matcher(html);
        int images = 0;
        while (m.find()) {
            // The template escapes '=' (base64 padding) as &#61;, which the browser decodes back in the attribute.
            String uri = m.group(1).replace("&#61;", "=");
            assertTrue(uri.startsWith("data:image/png;base64,"), uri.substring(0, Math.min(40, uri.length())));
            byte[] png = Base64.getDecoder().decode(uri.substring("data:image/png;base64,".length()));
            assertArrayEquals(PNG_MAGIC, java.util.Arrays.copyOf(png, 8));
            images++;
        }
        assertEquals(1 + 2, images, "the layer chart and one heatmap per candidate");
        assertTrue(html.contains("No model folder was given"));
    }

    @Test
    void chartsRenderHeadlessAsPngAndSvg() {
        Comparison cmp = ReportJsonTest.awkward();
        JFreeChart chart = Charts.layerChart(cmp);
        byte[] png = Charts.png(chart, 800, 400);
        assertArrayEquals(PNG_MAGIC, java.util.Arrays.copyOf(png, 8));
        assertEquals("true", System.getProperty("java.awt.headless"));
        String svg = Charts.svg(chart, 800, 400);
        assertTrue(svg.contains("<svg") && svg.contains("</svg>"));
        byte[] heat = Charts.png(Charts.heatmap(cmp, 1), 800, Charts.heatmapHeight(cmp));
        assertArrayEquals(PNG_MAGIC, java.util.Arrays.copyOf(heat, 8));
    }
}
