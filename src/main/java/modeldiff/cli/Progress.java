package modeldiff.cli;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Status on stderr for people at a terminal: a stage line for work of unknown length, and a bar with counts, rate and
 * time left (me.tongfei:progressbar) where the work is counted. Nothing when there is no terminal (CI logs) or with
 * --quiet.
 */
final class Progress {
    private static final Progress STDERR = new Progress();
    private static volatile boolean quiet;
    private int width;

    static Progress stderr() {
        return STDERR;
    }

    static void setQuiet(boolean q) {
        quiet = q;
    }

    private static boolean on() {
        return !quiet && System.console() != null;
    }

    synchronized void show(String what) {
        if (!on()) return;
        String line = "modeldiff: " + what + "...";
        System.err.print("\r" + line + " ".repeat(Math.max(0, width - line.length())));
        System.err.flush();
        width = line.length();
    }

    synchronized void done() {
        if (width == 0) return;
        System.err.print("\r" + " ".repeat(width) + "\r");
        System.err.flush();
        width = 0;
    }

    /** Counted work: step() once per item; close() when done. A no-op when progress is off. */
    interface Counter extends AutoCloseable {
        void step();

        @Override
        void close();
    }

    Counter counter(String task, long total) {
        if (!on()) return new Counter() {
            public void step() {
            }

            public void close() {
            }
        };
        done();
        ProgressBar bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .continuousUpdate().build();
        return new Counter() {
            public void step() {
                bar.step();
            }

            public void close() {
                bar.close();
            }
        };
    }
}
