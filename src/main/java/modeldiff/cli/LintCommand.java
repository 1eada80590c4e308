package modeldiff.cli;

import modeldiff.lint.LintOptions;
import modeldiff.lint.LintReport;
import modeldiff.lint.Linter;
import modeldiff.lint.Rules;
import modeldiff.model.BadInputException;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "lint", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Check a model release for the config, weight, tokenizer and input mistakes that make implementations disagree.",
                "Exit 1 when any finding is an error, 0 otherwise, 2 for bad input. Rules and references: docs/lint.md."})
final class LintCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @Option(names = "--tokens", split = ",", description = "Token ids a run would use, comma separated (enables the input.* rules).")
    int[] tokens;

    @Option(names = "--tokens-from", description = "Take the tokens from this trace's metadata.")
    Path tokensFrom;

    @picocli.CommandLine.Mixin
    TextInputOptions textInput;

    @Option(names = "--json", description = "Also write the findings as JSON ({\"findings\": [...]}) to this file, atomically.")
    Path json;

    @Option(names = "--force", description = "Replace an existing --json file.")
    boolean force;

    @Option(names = "--skip-nonfinite", description = "Do not stream every tensor for NaN/Inf: read headers and embedding / lm_head only.")
    boolean skipNonfinite;

    @Option(names = "--list-rules", description = "Print the rule catalog and exit.")
    boolean listRules;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        if (listRules) {
            for (Rules.Rule r : Rules.ALL)
                System.out.printf("%-40s %s%s%n", r.id(), r.checks(), r.reference() == null ? "" : "  [" + r.reference() + "]");
            return 0;
        }
        if (model == null) throw new BadInputException("lint: --model is required");
        if ((tokens != null ? 1 : 0) + (tokensFrom != null ? 1 : 0) + (textInput.given() ? 1 : 0) > 1)
            throw new BadInputException("give one of --tokens, --tokens-from, --text/--text-file/--chat");
        int[] ids = tokens;
        if (tokensFrom != null) ids = TraceFiles.read(tokensFrom).tokens();
        if (textInput.given()) ids = textInput.ids(model);
        if (ids != null && ids.length == 0) throw new BadInputException("--tokens: no tokens given");
        if (json != null) Common.checkOutput(json, model, force);
        LintOptions opts = LintOptions.defaults().withTokens(ids).withNonfinite(!skipNonfinite);
        LintReport report = Linter.lint(model, opts);
        System.out.print(report.toText());
        if (json != null) {
            report.writeJson(json);
            System.out.println("wrote " + json);
        }
        return report.hasErrors() ? 1 : 0;
    }
}
