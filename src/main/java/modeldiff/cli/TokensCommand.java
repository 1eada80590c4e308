package modeldiff.cli;

import modeldiff.model.BadInputException;
import modeldiff.tokenizer.DiffCorpus;
import modeldiff.tokenizer.DiffReport;
import modeldiff.tokenizer.ReleaseTokenizer;
import modeldiff.tokenizer.TokenizerDiff;
import modeldiff.util.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** Diffs tokenizers: a release's tokenizer.json against its tokenizer.model, or two releases' tokenizers. */
@Command(name = "tokens", mixinStandardHelpOptions = true,
        description = {"Diff the fast (tokenizer.json) and slow (tokenizer.model) tokenizers of one release, or two releases' tokenizers,",
                "on a built-in corpus (code, whitespace, digits, scripts, emoji, special-token strings in text, leading/trailing spaces)",
                "plus --corpus files. Exit 1 when they disagree on any string, 0 when all agree, 2 for bad input."})
final class TokensCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Release folder. Never modified.")
    Path model;

    @Option(names = "--vs", paramLabel = "DIR2", description = "Another release: diff the two releases' default tokenizers instead of fast vs slow.")
    Path vs;

    @Option(names = "--corpus", paramLabel = "FILE.jsonl", description = "More strings, one JSON string per line (repeatable).")
    List<Path> corpus = new ArrayList<>();

    @Option(names = "--show", defaultValue = "10", paramLabel = "N", description = "Mismatches to show (default: ${DEFAULT-VALUE}).")
    int show;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the result as JSON.")
    Path json;

    @Option(names = "--report", paramLabel = "FILE.html", description = "Write an HTML report.")
    Path report;

    @Option(names = "--force", description = "Replace existing outputs.")
    boolean force;

    @Option(names = "--debug", description = "Show stack traces.")
    boolean debug;

    @Override
    public Integer call() {
        if (show < 0) throw new BadInputException("--show must be >= 0");
        for (Path p : new Path[]{json, report}) if (p != null) Common.checkOutput(p, model, force);
        TokenizerDiff.Result r;
        try (ReleaseTokenizer a = ReleaseTokenizer.open(model)) {
            List<DiffCorpus.Entry> strings = DiffCorpus.builtin(a.settings().specialTokens());
            for (Path f : corpus)
                for (String s : TokenizeCommand.readJsonl(f)) strings.add(new DiffCorpus.Entry("file " + f.getFileName(), s));
            if (vs != null) {
                try (ReleaseTokenizer b = ReleaseTokenizer.open(vs)) {
                    r = TokenizerDiff.diff(a.primary(), model.getFileName() + " " + a.primary().source(), b.primary(),
                            vs.getFileName() + " " + b.primary().source(), strings, show);
                }
            } else {
                if (!a.hasFast() || !a.hasSlow())
                    throw new BadInputException(model + ": fast vs slow needs both tokenizer.json and tokenizer.model (give --vs DIR2 to diff two releases)");
                r = TokenizerDiff.diff(a.fast(), "tokenizer.json", a.slow(), "tokenizer.model", strings, show);
            }
        }
        System.out.print(DiffReport.text(r));
        Map<Path, String> outputs = new java.util.LinkedHashMap<>();
        if (json != null) outputs.put(json, DiffReport.json(r));
        if (report != null) outputs.put(report, DiffReport.html(r, "Tokenizer diff: " + model.getFileName() + (vs != null ? " vs " + vs.getFileName() : "")));
        outputs.forEach((p, s) -> {
            AtomicFiles.writeString(p, s);
            System.out.println("wrote " + p);
        });
        return r.clean() ? 0 : 1;
    }
}
