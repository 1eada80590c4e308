package modeldiff.report;

import modeldiff.compare.Comparison;
import modeldiff.compare.RoutingAgreement;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Routing agreement of MoE models in the HTML report: a chart of agreement per layer and the flips, per candidate. */
final class RoutingView {
    private RoutingView() {
    }

    /** Adds "routing" (per candidate: lines) and "routingChart" to the template data; nothing for dense models. */
    static void add(Map<String, Object> view, Comparison cmp) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < cmp.candidates().size(); i++) {
            Comparison.CandidateResult c = cmp.candidates().get(i);
            RoutingAgreement r = RoutingAgreement.ofCandidate(cmp, i);
            if (r.isEmpty()) continue;
            for (RoutingAgreement.Layer l : r.layers())
                data.addValue(100 * l.agreement(), c.side().label(), "layer " + l.layer());
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("name", c.side().label());
            o.put("lines", r.describe());
            rows.add(o);
        }
        if (rows.isEmpty()) return;
        JFreeChart chart = ChartFactory.createBarChart("Routing agreement with the reference", "MoE layer",
                "tokens routed to the same experts (%)", data, PlotOrientation.VERTICAL, true, false, false);
        chart.getCategoryPlot().getRangeAxis().setRange(0, 100);
        view.put("routing", rows);
        view.put("routingChart", HtmlReport.dataUri(Charts.png(chart, HtmlReport.CHART_WIDTH, 360)));
    }
}
