package modeldiff.cli;

import modeldiff.notebook.NotebookRunner;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "notebook", mixinStandardHelpOptions = true, sortOptions = false, description = "Run a walkthrough (notebooks/*.jsh) and render it to HTML.")
final class NotebookCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "SCRIPT.jsh", description = "The walkthrough to run (a JShell script, e.g. notebooks/3-linting-a-release.jsh).")
    Path script;

    @Option(names = "--out", required = true, paramLabel = "FILE.html", description = "The HTML page to write: every cell with its output.")
    Path out;

    @Option(names = "--force", description = "Replace an existing output.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() throws Exception {
        Common.checkOutput(out, null, force);
        NotebookRunner.Result r = NotebookRunner.run(script);
        NotebookRunner.render(r, out);
        System.out.println("ran " + r.cells().size() + " cells of " + script + "; wrote " + out);
        return 0;
    }
}
