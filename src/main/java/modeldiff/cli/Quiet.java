package modeldiff.cli;

/**
 * Library logging is off unless --verbose: DJL logs through SLF4J, whose backend (slf4j-simple) reads its level from
 * simplelogger.properties (off) unless this system property says otherwise. Set before any logger exists. The JVM's
 * "Using incubator modules" line is filtered by the launcher script, which leaves it in with --verbose.
 */
final class Quiet {
    static final String LEVEL_PROPERTY = "org.slf4j.simpleLogger.defaultLogLevel";

    private Quiet() {
    }

    static void configure(boolean verbose) {
        if (verbose) System.setProperty(LEVEL_PROPERTY, "info");
    }
}
