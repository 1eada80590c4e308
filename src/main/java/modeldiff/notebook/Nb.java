package modeldiff.notebook;

import modeldiff.report.Charts;
import org.jfree.chart.JFreeChart;

import java.util.ArrayList;
import java.util.List;

/** What a notebook cell calls to put a chart into the rendered page (the runner collects it under that cell). */
public final class Nb {
    private static final List<byte[]> PENDING = new ArrayList<>();
    private static final List<java.nio.file.Path> TEMP = new ArrayList<>();

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

    /** A temporary folder that the runner deletes, with everything in it, when the notebook ends (even on failure). */
    public static synchronized java.nio.file.Path tempDir(String prefix) throws java.io.IOException {
        java.nio.file.Path d = java.nio.file.Files.createTempDirectory(prefix);
        TEMP.add(d);
        return d;
    }

    /** Deletes every folder {@link #tempDir} made; returns them. */
    static synchronized List<java.nio.file.Path> deleteTempDirs() {
        List<java.nio.file.Path> done = new ArrayList<>(TEMP);
        for (java.nio.file.Path d : TEMP) {
            try (java.util.stream.Stream<java.nio.file.Path> s = java.nio.file.Files.walk(d)) {
                for (java.nio.file.Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) java.nio.file.Files.deleteIfExists(p);
            } catch (java.io.IOException e) {
                System.err.println("modeldiff: warning: could not delete " + d + ": " + e.getMessage());
            }
        }
        TEMP.clear();
        return done;
    }
}
