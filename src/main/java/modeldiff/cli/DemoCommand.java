package modeldiff.cli;

import modeldiff.compare.CompareRunner;
import modeldiff.compare.Comparison;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.hunt.Hunt;
import modeldiff.demo.DemoAssets;
import modeldiff.hunt.HuntReport;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.report.FixSentences;
import modeldiff.report.HtmlReport;
import modeldiff.report.RunInfo;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * The main job on the shipped model: a small Gemma-family model (trained briefly on English text by
 * reference-impls/train_demo.py) and traces of it made by HF transformers, one of them with a known bug planted
 * (exact GELU where Gemma uses the tanh approximation, transformers PR #29402). Compare, locate, hunt, fix.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run the whole story on the shipped model: compare, locate the divergence, hunt its cause.")
final class DemoCommand implements Callable<Integer> {
    static final String CLEAN = DemoAssets.CLEAN;
    static final String BUGGY = DemoAssets.GELU_BUG;
    static final String LONG_BUGGY = DemoAssets.ROPE_BUG;
    static final String DEMO_MODEL_LABEL = "the demo model shipped inside modeldiff (src/main/resources/modeldiff/demo/model/config.json)";

    @Option(names = "--out", paramLabel = "DIR", description = "Where demo.html, demo-hunt.html and demo.png go (default: modeldiff/demo under the system's temporary folder).")
    Path out;

    @Option(names = "--force", description = "Replace demo.html, demo-hunt.html and demo.png when they exist.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    /** Your own input too: step 5 plants the GELU bug in our bf16 pass and shows it on this text. */
    @picocli.CommandLine.Mixin
    TextInputOptions textInput;

    @Override
    public Integer call() throws IOException {
        // The committed sample reports in reports/ are regenerated on purpose only (scripts/render-reports.sh passes
        // --out reports --force); a plain run writes outside the source tree and replaces only its own earlier outputs.
        boolean replace = force || out == null;
        if (out == null) out = Outputs.defaultDir("demo");
        if (Files.exists(out) && !Files.isDirectory(out)) throw new BadInputException(out + ": not a directory");
        for (String f : new String[]{"demo.html", "demo-hunt.html", "demo.png"}) Common.checkOutput(out.resolve(f), null, replace);
        Path work = Files.createTempDirectory("modeldiff-demo");
        try {
            DemoAssets.extract(work);
            return run(work.resolve("model"), work.resolve("traces"));
        } finally {
            try (Stream<Path> s = Files.walk(work)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private int run(Path modelDir, Path traces) {
        Model model = Model.open(modelDir);
        Trace clean = TraceFiles.read(traces.resolve(CLEAN)), buggy = TraceFiles.read(traces.resolve(BUGGY));
        ForwardInput in = new ForwardInput(clean.tokens(), clean.positionOffset());
        String text = asText(clean.tokens());
        Progress p = Progress.stderr();
        System.out.println("modeldiff demo: a small Gemma-family model, input \"" + text + "\" (" + in.length() + " byte tokens)");

        // 1. Against the float64 reference, both bf16 runs look like bf16 rounding.
        Comparison vsRef = CompareRunner.compare(model, in, ProbeLevel.ALL, CompareRunner.Spec.of(Implementations.create("reference")),
                List.of(CompareRunner.Spec.of("HF bf16", clean), CompareRunner.Spec.of("suspect bf16", buggy)),
                CompareRunner.FloorMode.MEASURED, p::show);
        p.done();
        String step1a = vsRef.candidates().get(0).verdict(), step1b = vsRef.candidates().get(1).verdict();
        System.out.println("1. against the float64 reference:");
        System.out.println("   HF bf16:      " + step1a);
        System.out.println("   suspect bf16: " + step1b);

        // 2. Next to a pass that rounds where PyTorch rounds, free-running: every probe carries all earlier error, so
        //    after one rounding tie the clean and the buggy run look alike (why end-to-end comparison fails in bf16).
        List<CompareRunner.Spec> both = List.of(CompareRunner.Spec.of("HF bf16", clean), CompareRunner.Spec.of("suspect bf16", buggy));
        Comparison free = CompareRunner.free(model, in, ProbeLevel.ALL, CompareRunner.Spec.of(Implementations.create("lowp:bf16")),
                both, CompareRunner.FloorMode.MEASURED, p::show);
        p.done();
        String step2a = free.candidates().get(0).verdict(), step2b = free.candidates().get(1).verdict();
        System.out.println("2. against lowp:bf16, free-running (each probe carries every earlier difference):");
        System.out.println("   HF bf16:      " + step2a);
        System.out.println("   suspect bf16: " + step2b);

        // 3. Teacher-forced: each op computed from the candidate's own input to it. A correct run differs only by a
        //    few rounding ties per op; the bug shows at the op where it acts.
        Comparison vsLowp = CompareRunner.forced(model, in, ProbeLevel.ALL, CompareRunner.Spec.of(Implementations.create("lowp:bf16")),
                both, true, p::show);
        p.done();
        String step3a = vsLowp.candidates().get(0).verdict(), step3b = vsLowp.candidates().get(1).verdict();
        System.out.println("3. against lowp:bf16, teacher-forced op by op (what every verdict uses):");
        System.out.println("   HF bf16:      " + step3a);
        System.out.println("   suspect bf16: " + step3b);

        // 4. The hunt names the cause.
        Hunt.Result hunt = Hunt.run(model, buggy, null, null, p::show);
        p.done();
        System.out.println("4. hunt on the suspect: " + hunt.sentence());

        // 5. The same at long context: RoPE angles in bf16 (positions 8150+).
        Trace longBuggy = TraceFiles.read(traces.resolve(LONG_BUGGY));
        Hunt.Result rope = Hunt.run(model, longBuggy, null, null, p::show);
        p.done();
        System.out.println("5. hunt on a trace at positions " + longBuggy.positionOffset() + "+: " + rope.sentence());
        if (textInput.given()) yourText(model, modelDir, p);

        String conclusion = FixSentences.conclusion(hunt, "the suspect");
        System.out.println("conclusion: " + conclusion);
        Path html = out.resolve("demo.html"), huntHtml = out.resolve("demo-hunt.html");
        List<String> command = List.of("modeldiff", "demo", "--out", out.toString());
        // The model was extracted to a temporary folder that is gone once the report is read: name it, not its path.
        RunInfo run = new RunInfo(command, RunInfo.versions("0.1.0"), model.config).withModelLabel(DEMO_MODEL_LABEL);
        HuntReport.writeHtml(hunt, "suspect bf16 trace", buggy, run, huntHtml);
        List<HtmlReport.Section> story = new ArrayList<>();
        story.add(HtmlReport.Section.text("1. Against float64, a bf16 bug drowns in rounding noise",
                "The float64 reference computes the model straight from the math. Any bf16 run differs from it by about 1%, so both the clean HF bf16 trace and the suspect trace from another implementation are judged against the bf16 noise floor:",
                "HF bf16: " + step1a, "suspect: " + step1b));
        story.add(HtmlReport.Section.text("2. Free-running against a faithful bf16 pass, one tie blurs everything after it",
                "lowp:bf16 rounds exactly where PyTorch rounds. Run on the tokens alone, each probe carries every earlier difference: one value that another kernel rounds the other way (CUDA's rsqrtf, cuBLAS's summation order) makes every later probe differ by bf16 noise, in the clean run as in the buggy one:",
                "HF bf16: " + step2a, "suspect: " + step2b));
        story.add(HtmlReport.Section.text("3. Teacher-forced, op by op, the bug stands out where it acts",
                "Forced by each trace, lowp computes every probe from that trace's own input to it (q/k/v from its attn_norm, layer i from its layer i−1), so each probe is one operation. A correct run differs only where an element sat on a rounding tie; the report counts differing elements and their distance in ulps. The chart (each layer's worst probe; faint: propagated error) and the tables below are this comparison.",
                "HF bf16: " + step3a, "suspect: " + step3b));
        story.add(HtmlReport.Section.text(hunt.verdict() == Hunt.Verdict.EXPLAINED ? "4. The hunt names the cause" : "4. The hunt",
                hunt.sentence() + " " + hunt.runs() + " runs, " + String.format("%.1f", hunt.costInForwards()) + " forwards' time. The chart of every tried fix set is in demo-hunt.html.",
                "The same at positions " + longBuggy.positionOffset() + "+: " + rope.sentence()));
        HtmlReport.write(vsLowp, run, new HtmlReport.Headline("modeldiff demo: " + conclusion,
                List.of("input: \"" + text + "\"", hunt.sentence()), hunt.verdict() != Hunt.Verdict.MATCH), story, html);
        Path png = out.resolve("demo.png");
        byte[] chart = modeldiff.report.Charts.png(modeldiff.report.Charts.layerChart(vsLowp), HtmlReport.CHART_WIDTH, HtmlReport.CHART_HEIGHT);
        modeldiff.util.AtomicFiles.write(png, o -> o.write(chart));
        System.out.println("wrote " + html);
        System.out.println("wrote " + huntHtml);
        System.out.println("wrote " + png);
        return 0;
    }

    /** Step 5: the GELU bug, planted in our own bf16 pass, against the faithful one on the user's text. */
    private void yourText(Model model, Path modelDir, Progress p) {
        int[] ids = textInput.ids(modelDir);
        Common.checkVocabulary(ids, model.config, "the demo's tokenizer");
        ForwardInput in = new ForwardInput(ids, 0);
        Trace planted = Implementations.create("lowp:bf16", modeldiff.forward.Fixes.parse("act.gelu_exact")).run(model, in, ProbeLevel.ALL);
        Comparison c = CompareRunner.compare(model, in, ProbeLevel.ALL, CompareRunner.Spec.of(Implementations.create("lowp:bf16")),
                List.of(CompareRunner.Spec.of("lowp:bf16 with exact GELU", planted)), CompareRunner.FloorMode.MEASURED, p::show);
        p.done();
        System.out.println("6. your text " + Common.quoted(textInput.resolvedText()) + " (" + ids.length + " tokens), exact GELU planted in our bf16 pass: "
                + c.candidates().get(0).verdict());
    }

    static String asText(int[] tokens) {
        return DemoAssets.asText(tokens);
    }
}
