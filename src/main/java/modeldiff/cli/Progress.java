package modeldiff.cli;

/** Status on stderr for people at a terminal; nothing when piped or in CI, where it would only be noise in logs. */
final class Progress {
    private static final Progress STDERR = new Progress();
    private final boolean on = System.console() != null;
    private int width;

    static Progress stderr() {
        return STDERR;
    }

    synchronized void show(String what) {
        if (!on) return;
        String line = "modeldiff: " + what + "...";
        System.err.print("\r" + line + " ".repeat(Math.max(0, width - line.length())));
        System.err.flush();
        width = line.length();
    }

    synchronized void done() {
        if (!on || width == 0) return;
        System.err.print("\r" + " ".repeat(width) + "\r");
        System.err.flush();
        width = 0;
    }
}
