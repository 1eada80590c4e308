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

    /** A counted step: "running reference (2/3)" or "teacher-forced comparison 2/3: label". */
    private static final java.util.regex.Pattern COUNTED = java.util.regex.Pattern.compile(".*\\((\\d+)/(\\d+)\\)|.* (\\d+)/(\\d+): .*");
    private ProgressBar counted;

    /**
     * A stage of work. A message with a count (the convention of the library's progress callbacks where they know
     * their total, as above) drives a bar with counts and time left, the message shown beside it; any other message
     * is a status line.
     */
    synchronized void show(String what) {
        if (!on()) return;
        java.util.regex.Matcher m = COUNTED.matcher(what);
        if (m.matches()) {
            boolean paren = m.group(1) != null;
            long i = Long.parseLong(paren ? m.group(1) : m.group(3)), n = Long.parseLong(paren ? m.group(2) : m.group(4));
            if (n > 1 && i >= 1 && i <= n) {
                count(what, i, n);
                return;
            }
        }
        closeCounted();
        String line = "modeldiff: " + what + "...";
        System.err.print("\r" + line + " ".repeat(Math.max(0, width - line.length())));
        System.err.flush();
        width = line.length();
    }

    /** Step {@code i} of {@code n} has started (i - 1 are done); a count that does not continue the bar starts a new one. */
    private void count(String what, long i, long n) {
        if (counted == null || counted.getMax() != n || counted.getCurrent() > i - 1) {
            closeCounted();
            clearLine();
            counted = new ProgressBarBuilder().setTaskName("modeldiff").setInitialMax(n).setStyle(ProgressBarStyle.ASCII)
                    .continuousUpdate().build();
        }
        counted.stepTo(i - 1);
        counted.setExtraMessage(what);
    }

    private void closeCounted() {
        if (counted == null) return;
        counted.close();
        counted = null;
    }

    synchronized void done() {
        closeCounted();
        clearLine();
    }

    private void clearLine() {
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
