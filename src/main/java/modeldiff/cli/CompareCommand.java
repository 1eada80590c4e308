package modeldiff.cli;

import modeldiff.compare.CompareRunner;
import modeldiff.compare.Comparison;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.report.Charts;
import modeldiff.report.HtmlReport;
import modeldiff.report.ReportJson;
import modeldiff.report.RunInfo;
import modeldiff.util.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compare candidate forward passes against a reference, probe by probe, and say where excess error starts.",
                "A SPEC is an implementation name (reference, ...) or the path of an existing trace file.",
                "Exit 0 when no candidate shows excess error, 1 when one does, 2 for bad input, 3 for an internal error."})
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @Option(names = "--reference", required = true, paramLabel = "SPEC", description = "The side taken as truth: a trace file or an implementation: " + Help.IMPLS + ".")
    String reference;

    @Option(names = "--candidate", required = true, paramLabel = "SPEC", description = "A side to judge (repeatable): a trace file or an implementation name (as for --reference).")
    List<String> candidates;

    @Mixin
    Common.InputOptions input;

    @Mixin
    Limits limits;

    @Option(names = "--probes", description = "layers | all, for implementations run here (default: all when a trace has sub-layer probes, else layers).")
    String probes;

    @Option(names = "--report", paramLabel = "FILE.html", description = "Write a self-contained HTML report.")
    Path report;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the machine-readable report (docs/report-json.md).")
    Path json;

    @Option(names = "--png", paramLabel = "FILE", description = "Write the per-layer chart as PNG.")
    Path png;

    @Option(names = "--svg", paramLabel = "FILE", description = "Write the per-layer chart as SVG.")
    Path svg;

    @Option(names = "--noise-floor", defaultValue = "measured", paramLabel = "measured|table",
            description = "Expected-error bands: measured on this model and input (default), or the fixed table.")
    String noiseFloor;

    @Option(names = "--no-propagated", description = "Skip the free-running runs whose propagated error is shown beside the"
            + " teacher-forced verdict (saves one run of each pass).")
    boolean noPropagated;

    @Option(names = "--force", description = "Replace existing output files.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        Progress progress = Progress.stderr();
        checkOutputs();
        limits.checkTimeout();
        List<CompareRunner.Spec> specs = new ArrayList<>();
        specs.add(timed(CompareRunner.Spec.parse(reference, "--reference")));
        for (String c : candidates) specs.add(timed(CompareRunner.Spec.parse(c, "--candidate")));

        Model m = Model.open(model);
        boolean explicitInput = input.explicit();
        ForwardInput in = CompareRunner.inputFor(specs, explicitInput ? input.resolve(m.config) : null, null);
        if (in == null) in = input.resolve(m.config);
        else if (!explicitInput && input.positionOffset != null) in = new ForwardInput(in.tokens(), input.positionOffset);
        if (!explicitInput)
            for (CompareRunner.Spec s : specs)
                if (s.trace() != null) {
                    Common.checkVocabulary(in.tokens(), m.config, s.text() + ": __metadata__.tokens");
                    break;
                }
        limits.checkTokens(in.length());
        ProbeLevel level = probes != null ? Common.probeLevel(probes) : CompareRunner.levelFor(specs);
        // Every side's trace, plus the passes the measured noise floor runs.
        limits.checkMemory(m, in.length(), level, specs.size() + 2);
        CompareRunner.FloorMode mode = floorMode();
        Comparison cmp = mode == CompareRunner.FloorMode.TABLE
                ? CompareRunner.compare(m, in, level, specs.get(0), specs.subList(1, specs.size()), mode, progress::show)
                : CompareRunner.forced(m, in, level, specs.get(0), specs.subList(1, specs.size()), !noPropagated, progress::show);
        Set<String> ranHere = new HashSet<>();
        for (CompareRunner.Spec s : specs) if (s.pass() != null) ranHere.add(s.pass().name());
        List<Comparison.Side> sides = new ArrayList<>();
        sides.add(cmp.reference());
        for (Comparison.CandidateResult c : cmp.candidates()) sides.add(c.side());
        for (Comparison.Side s : sides) if (ranHere.contains(s.label())) Common.warnNonFinite(s.trace(), s.label());
        RunInfo run = new RunInfo(commandLine(), RunInfo.versions(version()), m.config);

        // Everything is rendered first and written after, so a failure while rendering leaves no output at all.
        Map<Path, byte[]> outputs = new LinkedHashMap<>();
        if (json != null) {
            progress.show("rendering " + json);
            outputs.put(json, ReportJson.toJson(cmp, run).getBytes(StandardCharsets.UTF_8));
        }
        if (png != null || svg != null) {
            progress.show("drawing the layer chart");
            var chart = Charts.layerChart(cmp);
            if (png != null) outputs.put(png, Charts.png(chart, HtmlReport.CHART_WIDTH, HtmlReport.CHART_HEIGHT));
            if (svg != null) outputs.put(svg, Charts.svg(chart, HtmlReport.CHART_WIDTH, HtmlReport.CHART_HEIGHT).getBytes(StandardCharsets.UTF_8));
        }
        if (report != null) {
            progress.show("rendering " + report);
            outputs.put(report, HtmlReport.render(cmp, run).getBytes(StandardCharsets.UTF_8));
        }
        List<String> written = new ArrayList<>();
        for (Map.Entry<Path, byte[]> o : outputs.entrySet()) {
            progress.show("writing " + o.getKey());
            AtomicFiles.writeBytes(o.getKey(), o.getValue());
            written.add(o.getKey().toString());
        }
        progress.done();
        PrintStream outStream = System.out;
        if (input.text() != null) outStream.println("input: " + in.length() + " tokens from the release's tokenizer: " + Common.quoted(input.text()));
        if (cmp.candidates().size() == 1) outStream.println(cmp.verdict());
        else for (Comparison.CandidateResult c : cmp.candidates()) outStream.println(c.side().label() + ": " + c.verdict());
        if (cmp.noiseFloor().provisional()) outStream.println("(noise floor: " + cmp.noiseFloor().describe() + ")");
        for (int i = 0; i < cmp.candidates().size(); i++)             // MoE models: which tokens went to other experts
            for (String line : modeldiff.compare.RoutingAgreement.ofCandidate(cmp, i).describe())
                outStream.println("routing " + cmp.candidates().get(i).side().label() + " " + line);
        for (String w : written) outStream.println("wrote " + w);
        return cmp.anyExcess() ? Main.EXIT_FINDING : Main.EXIT_CLEAN;
    }

    private CompareRunner.FloorMode floorMode() {
        try {
            return CompareRunner.FloorMode.valueOf(noiseFloor.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new BadInputException("--noise-floor must be 'measured' or 'table', got '" + noiseFloor + "'");
        }
    }

    private CompareRunner.Spec timed(CompareRunner.Spec s) {
        return s.pass() == null ? s : new CompareRunner.Spec(s.text(), null, limits.timed(s.pass()));
    }

    private void checkOutputs() {
        Set<Path> seen = new HashSet<>();
        for (Path p : new Path[]{report, json, png, svg}) {
            if (p == null) continue;
            Common.checkOutput(p, model, force);
            if (!seen.add(p.toAbsolutePath().normalize())) throw new BadInputException(p + ": named for two outputs");
        }
    }

    /** An existing file is a trace; a path-looking spec that does not exist is an error, not an implementation name. */

    private List<String> commandLine() {
        // originalArgs() holds the whole command line from the top command down, "compare" included.
        List<String> argv = new ArrayList<>();
        argv.add("modeldiff");
        argv.addAll(spec.commandLine().getParseResult().originalArgs());
        return argv;
    }

    private static String version() {
        String v = Main.class.getAnnotation(Command.class).version()[0];
        return v.startsWith("modeldiff ") ? v.substring("modeldiff ".length()) : v;
    }
}
