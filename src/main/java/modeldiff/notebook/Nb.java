package modeldiff.notebook;

import modeldiff.report.Charts;
import org.jfree.chart.JFreeChart;

import java.util.ArrayList;
import java.util.List;

/** What a notebook cell calls to put a chart into the rendered page (the runner collects it under that cell). */
public final class Nb {
    private static final List<byte[]> PENDING = new ArrayList<>();

    private Nb() {
    }

    public static synchronized void show(JFreeChart chart) {
        System.setProperty("java.awt.headless", "true");
        PENDING.add(Charts.png(chart, 900, 440));
    }

    public static synchronized void showPng(byte[] png) {
        PENDING.add(png.clone());
    }

    static synchronized List<byte[]> drain() {
        List<byte[]> out = new ArrayList<>(PENDING);
        PENDING.clear();
        return out;
    }
}
