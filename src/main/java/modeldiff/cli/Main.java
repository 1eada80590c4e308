package modeldiff.cli;

import modeldiff.model.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/**
 * Entry point. Commands are thin: they parse flags and call the library. Errors in user input print one line
 * and exit with code 2; a stack trace only with --debug.
 */
@Command(name = "modeldiff", mixinStandardHelpOptions = true, version = "modeldiff 0.1.0",
        description = "Finds implementation bugs in open LLM releases by diffing independently coded forward passes.",
        subcommands = {DemoCommand.class, TraceCommand.class, TokenizeCommand.class, TokensCommand.class, CompareCommand.class, HuntCommand.class, LintCommand.class,
                CheckCommand.class, BaselineCommand.class, NotebookCommand.class, InfoCommand.class, FixesCommand.class, OpsCommand.class, SynthCommand.class, BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    public static final int EXIT_BAD_INPUT = 2;

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    public static int execute(String... args) {
        boolean debug = java.util.Arrays.asList(args).contains("--debug");
        CommandLine cl = new CommandLine(new Main());
        // A wrong flag is bad input too: one line naming it, not the whole usage text.
        cl.setParameterExceptionHandler((ex, argv) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            err.println("modeldiff: " + BadInputException.oneLine(ex.getMessage()) + " (see "
                    + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help)");
            if (debug) ex.printStackTrace(err);
            err.flush();
            return EXIT_BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            PrintWriter err = cmd.getErr();
            if (ex instanceof BadInputException || ex instanceof IllegalArgumentException) {
                err.println("modeldiff: " + BadInputException.oneLine(ex.getMessage()));
                if (debug) ex.printStackTrace(err);
                err.flush();
                return EXIT_BAD_INPUT;
            }
            err.println("modeldiff: internal error: " + BadInputException.oneLine(String.valueOf(ex)));
            if (debug) ex.printStackTrace(err);
            else err.println("(rerun with --debug for the stack trace)");
            err.flush();
            return 1;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // Limits estimate memory before loading; this is the backstop, still one line.
            System.err.println("modeldiff: out of Java heap (" + BadInputException.oneLine(e.getMessage())
                    + "); give fewer tokens or more heap (MODELDIFF_JAVA_OPTS=-Xmx...)");
            if (debug) e.printStackTrace();
            return 1;
        }
    }
}
