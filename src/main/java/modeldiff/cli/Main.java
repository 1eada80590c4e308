package modeldiff.cli;

import modeldiff.model.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;

/**
 * Entry point. Commands are thin: they parse flags and call the library. Exit codes, the same for every command:
 * 0 clean; 1 a finding (excess error, an unexplained hunt target, a failed release check, a lint error); 2 bad input
 * (one line naming the file, key or flag); 3 an internal error (one line; --debug prints the stack trace).
 */
@Command(name = "modeldiff", mixinStandardHelpOptions = true, version = "modeldiff 0.1.0",
        description = "Finds implementation bugs in open LLM releases by diffing independently coded forward passes.",
        subcommands = {DemoCommand.class, InfoCommand.class, LintCommand.class, TokenizeCommand.class, TokensCommand.class,
                TraceCommand.class, CompareCommand.class, HuntCommand.class, CheckCommand.class, BaselineCommand.class,
                FixesCommand.class, OpsCommand.class, NotebookCommand.class, SynthCommand.class, BenchCommand.class,
                DoctorCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    public static final int EXIT_CLEAN = 0;
    public static final int EXIT_FINDING = 1;
    public static final int EXIT_BAD_INPUT = 2;
    public static final int EXIT_INTERNAL = 3;

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    public static int execute(String... args) {
        List<String> argv = Arrays.asList(args);
        Quiet.configure(argv.contains("--verbose"));
        Progress.setQuiet(argv.contains("--quiet"));
        if (argv.contains("--help") || argv.contains("-h") || argv.contains("help")) Help.describeImplementations();
        return execute(new CommandLine(new Main()), args);
    }

    /** Runs {@code cl} with modeldiff's error handling and exit codes (a seam for tests with commands of their own). */
    static int execute(CommandLine cl, String... args) {
        boolean debug = Arrays.asList(args).contains("--debug");
        // A wrong flag is bad input too: one line naming it, not the whole usage text.
        cl.setParameterExceptionHandler((ex, ignored) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            err.println("modeldiff: " + BadInputException.oneLine(ex.getMessage()) + " (see "
                    + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help)");
            if (debug) ex.printStackTrace(err);
            err.flush();
            return EXIT_BAD_INPUT;
        });
        // Only BadInputException is the user's fault; anything else (IllegalArgumentException included) is ours.
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            Progress.stderr().done();
            boolean bad = ex instanceof BadInputException;
            return fail(cmd.getErr(), bad ? BadInputException.oneLine(ex.getMessage())
                    : "internal error: " + BadInputException.oneLine(String.valueOf(ex)), ex, debug, bad ? EXIT_BAD_INPUT : EXIT_INTERNAL);
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // Limits estimate memory before loading; this is the backstop, still one line.
            return fail(new PrintWriter(System.err, true), "out of Java heap (" + BadInputException.oneLine(e.getMessage())
                    + "); give fewer tokens or more heap (MODELDIFF_JAVA_OPTS=-Xmx...)", e, debug, EXIT_INTERNAL);
        } catch (LinkageError e) {
            // A native library that will not load (libtorch, libcuda) outside the paths that check for it first.
            return fail(new PrintWriter(System.err, true), "internal error: " + BadInputException.oneLine(String.valueOf(e)),
                    e, debug, EXIT_INTERNAL);
        }
    }

    private static int fail(PrintWriter err, String line, Throwable e, boolean debug, int code) {
        err.println("modeldiff: " + line + (code == EXIT_INTERNAL && !debug ? " (rerun with --debug for the stack trace)" : ""));
        if (debug) e.printStackTrace(err);
        err.flush();
        return code;
    }
}
