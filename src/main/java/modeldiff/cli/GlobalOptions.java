package modeldiff.cli;

import picocli.CommandLine.Option;

/**
 * Options every command takes. Main reads them from the raw arguments before parsing (a stack trace is wanted even
 * when parsing fails; logging must be set up before any library logs), so these fields only document and accept them.
 */
final class GlobalOptions {
    @Option(names = "--debug", description = "On an error, print the stack trace after the one-line message.")
    boolean debug;

    @Option(names = "--verbose", description = "Show library logging (DJL, SLF4J) and JVM warnings, which are hidden by default.")
    boolean verbose;

    @Option(names = "--quiet", description = "No progress bar (it is also off when stderr is not a terminal).")
    boolean quiet;
}
