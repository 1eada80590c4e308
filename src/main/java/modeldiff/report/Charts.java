package modeldiff.report;

import modeldiff.compare.Comparison;
import modeldiff.compare.ProbeId;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.annotations.XYTextAnnotation;
import org.jfree.chart.axis.AxisLocation;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.PaintScale;
import org.jfree.chart.renderer.xy.XYBlockRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.PaintScaleLegend;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.DefaultXYZDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.awt.Rectangle;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The report's two pictures, drawn off-screen: log-L2 per layer (one line per candidate, its noise floor dashed),
 * and per-token log-L2 as a layer × token heatmap per candidate.
 * <p>
 * Layer axis (same in the JSON's "layer" field): −1 embed, 0..L−1 the layers' outputs, L final_norm, L+1 logits.
 */
public final class Charts {
    static {
        // Reports are made on servers and in CI: never look for a display.
        System.setProperty("java.awt.headless", "true");
    }

    /** Distinguishable in print and for the common colour-vision deficiencies (Okabe–Ito). */
    private static final Color[] PALETTE = {
            new Color(0x0072B2), new Color(0xE69F00), new Color(0x009E73), new Color(0xCC79A7),
            new Color(0x56B4E9), new Color(0xD55E00), new Color(0xF0E442), Color.DARK_GRAY};
    private static final Font TITLE = new Font(Font.SANS_SERIF, Font.BOLD, 15);

    private Charts() {
    }

    public static Color color(int candidate) {
        return PALETTE[candidate % PALETTE.length];
    }

    /** log-L2 per layer (its worst probe), one series per candidate, its noise floor dashed, and a second series faint. */
    public static JFreeChart layerChart(Comparison cmp) {
        int L = cmp.numLayers();
        XYSeriesCollection data = new XYSeriesCollection();
        XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, true);
        List<XYTextAnnotation> notes = new ArrayList<>();
        List<String> names = Labels.shortLabels(cmp);
        double top = Double.NEGATIVE_INFINITY;
        int s = 0;
        for (int ci = 0; ci < cmp.candidates().size(); ci++) {
            Comparison.CandidateResult c = cmp.candidates().get(ci);
            // Series keys must be unique; two candidates can share a label (the same spec given twice).
            String name = names.get(ci + 1) + suffix(cmp, ci);
            XYSeries err = new XYSeries(name + " (" + c.precision().id() + ")", false, true);
            XYSeries floor = new XYSeries(name + " floor", false, true);
            // Beside a teacher-forced comparison: the propagated (free-running) error, lighter, for information.
            XYSeries second = new XYSeries(name + " (" + (cmp.localError() == null ? "local" : cmp.localError().label()) + ")", false, true);
            // Each layer's point is its worst probe, sub-layer steps included: in a teacher-forced comparison a bug
            // shows at the operation where it acts (a norm), while the layer's output is computed from the
            // candidate's own inputs and may match.
            java.util.TreeMap<Integer, Comparison.ProbeResult> worst = new java.util.TreeMap<>();
            for (Comparison.ProbeResult p : c.probes()) {
                Integer x = p.id().isLayerLevel() ? p.id().axis(L)
                        : p.id().kind() == ProbeId.Kind.SUB_LAYER ? Integer.valueOf(p.id().layer()) : null;
                if (x == null) continue;
                Comparison.ProbeResult w = worst.get(x);
                if (w == null || !(p.metrics().logL2() <= w.metrics().logL2()) || p.metrics().nonFinite() > 0) worst.put(x, p);
                if (p.id().isLayerLevel() && p.localLogL2() != null && Double.isFinite(p.localLogL2())) second.add(x.intValue(), p.localLogL2());
            }
            for (Map.Entry<Integer, Comparison.ProbeResult> e : worst.entrySet()) {
                Comparison.ProbeResult p = e.getValue();
                int x = e.getKey();
                double y = p.metrics().logL2();
                if (Double.isFinite(p.noiseFloor())) {      // a tie budget counts elements: no log-L2 line to draw
                    floor.add(x, p.noiseFloor());
                    top = Math.max(top, p.noiseFloor());
                }
                if (Double.isFinite(y) && p.metrics().nonFinite() == 0) {
                    err.add(x, y);
                    top = Math.max(top, y);
                } else {
                    err.add(x, null); // a gap, labelled below: a NaN has no place on a log scale
                    XYTextAnnotation a = new XYTextAnnotation("NaN/Inf", x, 0);
                    a.setPaint(color(ci));
                    notes.add(a);
                }
            }
            data.addSeries(err);
            r.setSeriesPaint(s, color(ci));
            r.setSeriesStroke(s, new BasicStroke(2f));
            s++;
            data.addSeries(floor);
            r.setSeriesPaint(s, color(ci));
            r.setSeriesShapesVisible(s, false);
            r.setSeriesVisibleInLegend(s, false); // explained once in the subtitle instead of once per candidate
            r.setSeriesStroke(s, new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{6f, 4f}, 0f));
            s++;
            if (second.getItemCount() > 0) {
                data.addSeries(second);
                Color base = color(ci);
                r.setSeriesPaint(s, new Color(base.getRed(), base.getGreen(), base.getBlue(), 90));
                r.setSeriesShapesVisible(s, false);
                r.setSeriesStroke(s, new BasicStroke(1.2f));
                s++;
            }
        }
        NumberAxis xAxis = layerAxis("layer (−1 = embed, " + L + " = final_norm, " + (L + 1) + " = logits)", L);
        NumberAxis yAxis = new NumberAxis("log-L2 = log10(‖c − r‖ / ‖r‖)");
        yAxis.setAutoRangeIncludesZero(false);
        XYPlot plot = new XYPlot(data, xAxis, yAxis, r);
        styleplot(plot);
        for (XYTextAnnotation a : notes) {
            a.setY(Double.isFinite(top) ? top + 0.3 : 0);
            a.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 11));
            plot.addAnnotation(a);
        }
        // One marker per distinct first divergence: where to start reading code.
        for (int ci = 0; ci < cmp.candidates().size(); ci++) {
            Comparison.Divergence d = cmp.candidates().get(ci).firstDivergence();
            if (d == null || d.probe().id().axis(L) == null) continue;
            ValueMarker m = new ValueMarker(d.probe().id().axis(L), color(ci),
                    new BasicStroke(1f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{2f, 3f}, 0f));
            m.setLabel("first excess: " + d.probe().id().describe());
            m.setLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            m.setLabelPaint(color(ci));
            // At the bottom: error curves climb after a divergence, so the top is where they run.
            m.setLabelAnchor(RectangleAnchor.BOTTOM_RIGHT);
            m.setLabelTextAnchor(TextAnchor.BOTTOM_LEFT);
            m.setLabelOffset(new RectangleInsets(4, 4, 4 + 14 * ci, 4));
            m.setLabelBackgroundColor(new Color(255, 255, 255, 0));
            plot.addDomainMarker(m);
        }
        JFreeChart chart = new JFreeChart("Error per layer against " + names.get(0), TITLE, plot, true);
        chart.addSubtitle(new TextTitle((cmp.localError() instanceof modeldiff.compare.CompareRunner.Propagated
                ? "teacher-forced: each probe from the candidate's own input to it; faint: propagated (free-running) error; " : "")
                + "dashed: noise floor (none where ties are counted); −20 means identical",
                new Font(Font.SANS_SERIF, Font.PLAIN, 12)));
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static String suffix(Comparison cmp, int ci) {
        String label = cmp.candidates().get(ci).side().label();
        for (int j = 0; j < ci; j++)
            if (cmp.candidates().get(j).side().label().equals(label)) return " (#" + (ci + 1) + ")";
        return "";
    }

    /**
     * Per-token log-L2 of one candidate's layer-level probes. Colours break at the candidate's noise floor: blues for
     * error that precision explains (paler = smaller), orange to dark red for decades above it, black for NaN/Inf.
     */
    public static JFreeChart heatmap(Comparison cmp, int candidate) {
        Comparison.CandidateResult c = cmp.candidates().get(candidate);
        int L = cmp.numLayers();
        List<double[]> cells = new ArrayList<>();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY, floor = Double.NaN;
        for (Comparison.ProbeResult p : c.probes()) {
            if (!p.id().isLayerLevel()) continue;
            // Table floors are the same for every probe; a per-probe floor breaks the colours at the layer outputs' one.
            if (Double.isNaN(floor) || p.id().kind() == ProbeId.Kind.LAYER) floor = p.noiseFloor();
            double[] v = p.perTokenLogL2();
            for (int t = 0; t < v.length; t++) {
                cells.add(new double[]{t, p.id().axis(L), v[t]});
                if (Double.isFinite(v[t])) {
                    lo = Math.min(lo, v[t]);
                    hi = Math.max(hi, v[t]);
                }
            }
        }
        if (Double.isNaN(floor)) floor = 0;
        if (!Double.isFinite(lo)) lo = hi = floor;
        // Six decades below the floor is "far below" already; stretching the blues down to the −20 of identical values
        // would paint everything that matters the same shade. Three decades above keeps small excesses orange.
        lo = Math.min(Math.max(lo, floor - 6), floor - 1);
        hi = Math.max(hi, floor + 3);
        double[][] series = new double[3][cells.size()];
        for (int i = 0; i < cells.size(); i++)
            for (int k = 0; k < 3; k++) series[k][i] = cells.get(i)[k];
        DefaultXYZDataset data = new DefaultXYZDataset();
        data.addSeries("per-token log-L2", series);

        XYBlockRenderer r = new XYBlockRenderer();
        r.setBlockAnchor(RectangleAnchor.CENTER);
        FloorPaintScale scale = new FloorPaintScale(lo, floor, hi);
        r.setPaintScale(scale);
        int tokens = cmp.reference().trace().tokens().length;
        NumberAxis xAxis = new NumberAxis("token index (position = offset " + cmp.reference().trace().positionOffset() + " + index)");
        xAxis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        xAxis.setRange(-0.5, tokens - 0.5);
        xAxis.setLowerMargin(0);
        xAxis.setUpperMargin(0);
        NumberAxis yAxis = layerAxis("layer", L);
        yAxis.setRange(-1.5, L + 1.5);
        yAxis.setInverted(true); // embed at the top, logits at the bottom: the order a forward pass runs
        XYPlot plot = new XYPlot(data, xAxis, yAxis, r);
        styleplot(plot);
        plot.setDomainGridlinesVisible(false);
        plot.setRangeGridlinesVisible(false);
        JFreeChart chart = new JFreeChart("Per-token error: " + Labels.shortLabels(cmp).get(candidate + 1), TITLE, plot, false);
        NumberAxis legendAxis = new NumberAxis("log-L2 (" + c.precision().id() + " floor " + fmt(floor) + ")");
        legendAxis.setRange(lo, hi);
        PaintScaleLegend legend = new PaintScaleLegend(scale, legendAxis);
        legend.setPosition(RectangleEdge.BOTTOM);
        legend.setAxisLocation(AxisLocation.BOTTOM_OR_RIGHT);
        legend.setMargin(new RectangleInsets(4, 120, 4, 120));
        legend.setStripWidth(12);
        chart.addSubtitle(legend);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    /** Pixel height that gives each heatmap row room for a label, within sane bounds. */
    public static int heatmapHeight(Comparison cmp) {
        return Math.max(280, Math.min(1600, (cmp.numLayers() + 3) * 22 + 140));
    }

    public static byte[] png(JFreeChart chart, int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ChartUtils.writeChartAsPNG(out, chart, width, height);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a byte array cannot fail to be written
        }
        return out.toByteArray();
    }

    public static String svg(JFreeChart chart, int width, int height) {
        SVGGraphics2D g = new SVGGraphics2D(width, height);
        chart.draw(g, new Rectangle(width, height));
        return g.getSVGDocument();
    }

    private static void styleplot(XYPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xDDDDDD));
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));
        plot.setOutlinePaint(Color.GRAY);
    }

    /** Integer ticks labelled with probe names at the ends: "embed", 0, 1, …, "final_norm", "logits". */
    private static NumberAxis layerAxis(String label, int numLayers) {
        NumberAxis axis = new NumberAxis(label);
        axis.setAutoRangeIncludesZero(false);
        if (numLayers + 3 <= 24) axis.setTickUnit(new NumberTickUnit(1));
        else axis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        axis.setNumberFormatOverride(new LayerFormat(numLayers));
        return axis;
    }

    private static String fmt(double v) {
        return String.format(java.util.Locale.ROOT, "%.1f", v);
    }

    private static final class LayerFormat extends NumberFormat {
        private final int numLayers;

        LayerFormat(int numLayers) {
            this.numLayers = numLayers;
        }

        @Override
        public StringBuffer format(double number, StringBuffer to, FieldPosition pos) {
            return format(Math.round(number), to, pos);
        }

        @Override
        public StringBuffer format(long n, StringBuffer to, FieldPosition pos) {
            if (n == -1) return to.append("embed");
            if (n == numLayers) return to.append("final_norm");
            if (n == numLayers + 1) return to.append("logits");
            if (n < -1 || n > numLayers + 1) return to;
            return to.append(n);
        }

        @Override
        public Number parse(String source, ParsePosition pos) {
            throw new UnsupportedOperationException();
        }
    }

    /** Two ramps meeting at the noise floor, black for non-finite values. */
    static final class FloorPaintScale implements PaintScale {
        private static final Color BELOW_FAR = new Color(0xF2F6FB), BELOW_NEAR = new Color(0x4A7DB8);
        private static final Color ABOVE_NEAR = new Color(0xF4B942), ABOVE_FAR = new Color(0x8B0000);
        private final double lo, floor, hi;

        FloorPaintScale(double lo, double floor, double hi) {
            this.lo = lo;
            this.floor = floor;
            this.hi = hi;
        }

        @Override
        public double getLowerBound() {
            return lo;
        }

        @Override
        public double getUpperBound() {
            return hi;
        }

        @Override
        public Paint getPaint(double v) {
            if (!Double.isFinite(v)) return Color.BLACK;
            if (v <= floor) return mix(BELOW_FAR, BELOW_NEAR, floor == lo ? 1 : (v - lo) / (floor - lo));
            return mix(ABOVE_NEAR, ABOVE_FAR, hi == floor ? 1 : (v - floor) / (hi - floor));
        }

        private static Color mix(Color a, Color b, double t) {
            t = Math.max(0, Math.min(1, t));
            return new Color((int) Math.round(a.getRed() + (b.getRed() - a.getRed()) * t),
                    (int) Math.round(a.getGreen() + (b.getGreen() - a.getGreen()) * t),
                    (int) Math.round(a.getBlue() + (b.getBlue() - a.getBlue()) * t));
        }
    }
}
