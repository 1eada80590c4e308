package modeldiff.cli;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "trace", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run one implementation on a model and write its probes as a trace file.")
final class TraceCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @Option(names = "--impl", defaultValue = "reference", paramLabel = "IMPL",
            description = "Implementation to run (default: ${DEFAULT-VALUE}): " + Help.IMPLS + ".")
    String impl;

    @Option(names = "--fixes", paramLabel = "id,...",
            description = "Run the implementation with these catalog fixes applied (`modeldiff fixes`): a deliberately buggy run, e.g. a hunt target.")
    String fixes;

    @Option(names = "--fixes-from-layer", paramLabel = "K",
            description = "Apply --fixes only from decoder layer K on (earlier layers run without them): a bug in the later"
                    + " layers only. Needs a pass that can start mid-model (reference, lowp).")
    Integer fixesFromLayer;

    @Mixin
    Common.InputOptions input;

    @Mixin
    Limits limits;

    @Option(names = "--teacher-forced", paramLabel = "TRACE",
            description = "Teacher-forced run: every recorded probe is computed from TRACE's value of its input (layer i from"
                    + " TRACE's layers.{i-1}; with --probes all each operation from TRACE's input to it). Tokens and offset"
                    + " come from TRACE. Each probe then shows one operation's error, not the sum of all earlier ones.")
    Path teacherForced;

    @Option(names = "--probes", defaultValue = "layers", description = "layers | all (default: ${DEFAULT-VALUE}).")
    String probes;

    @Option(names = "--out", required = true, description = "Trace file to write (safetensors).")
    Path out;

    @Option(names = "--storage", defaultValue = "f64", description = "f64 | f32 element type in the file (default: ${DEFAULT-VALUE}).")
    String storage;

    @Option(names = "--force", description = "Replace an existing output file.")
    boolean force;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        ProbeLevel level = Common.probeLevel(probes);
        DType st = switch (storage.toLowerCase()) {
            case "f64", "float64" -> DType.F64;
            case "f32", "float32" -> DType.F32;
            default -> throw new BadInputException("--storage must be f64 or f32, got '" + storage + "'");
        };
        Common.checkOutput(out, model, force);
        limits.checkTimeout();
        ForwardPass pass = limits.timed(Implementations.create(impl, modeldiff.forward.Fixes.parse(fixes)));
        Model m = Model.open(model);
        ForwardInput in = teacherForced == null ? input.resolve(m.config) : forcedInput(m);
        limits.checkTokens(in.length());
        limits.checkMemory(m, in.length(), level, 1);
        Trace t = fixesFromLayer == null ? pass.run(m, in, level) : fromLayer(m, in, level);
        if (input.text() != null) t.putExtra("text", input.text());   // the text beside the ids it became
        if (teacherForced != null) t.putExtra("teacher_file", teacherForced.getFileName().toString());
        Common.warnNonFinite(t, pass.name());
        TraceFiles.write(t, out, st);
        System.out.println("wrote " + out + ": " + t.probeNames().size() + " probes, " + in.length() + " tokens, "
                + pass.name() + " (" + pass.dtype() + ")" + (in.forced() ? ", teacher-forced by " + teacherForced : ""));
        return 0;
    }

    /** Layers [0, K) without the fixes, [K, L) with them, as one trace. */
    private Trace fromLayer(Model m, ForwardInput in, ProbeLevel level) {
        int L = m.config.numLayers, k = fixesFromLayer;
        if (fixes == null || k < 1 || k >= L)
            throw new modeldiff.model.BadInputException("--fixes-from-layer needs --fixes and a layer in 1.." + (L - 1) + ", got " + k);
        ForwardPass clean = limits.timed(Implementations.create(impl));
        ForwardPass buggy = limits.timed(Implementations.create(impl, modeldiff.forward.Fixes.parse(fixes)));
        if (!clean.canReplay()) throw new modeldiff.model.BadInputException("--fixes-from-layer: " + impl + " cannot start mid-model");
        Trace head = clean.runLayers(m, in, level, 0, k, null);
        Trace tail = buggy.runLayers(m, in, level, k, L, head.probe("layers." + (k - 1)).data());
        Trace t = new Trace(tail.producer(), tail.dtype(), tail.device(), head.tokens(), head.positionOffset());
        for (Trace part : List.of(head, tail))
            for (String n : part.probeNames()) t.put(n, part.probe(n).cols(), part.probe(n).data());
        t.putExtra("fixes", fixes + " from layer " + k);
        return t;
    }

    /** The teacher's tokens and offset, checked against the vocabulary; explicit input options would contradict it. */
    private ForwardInput forcedInput(Model m) {
        if (input.tokens != null || input.tokensFrom != null || input.positionOffset != null)
            throw new modeldiff.model.BadInputException("--teacher-forced takes tokens and offset from the teacher trace;"
                    + " drop --tokens / --tokens-from / --position-offset");
        Trace teacher = modeldiff.trace.TraceFiles.read(teacherForced);
        Common.checkVocabulary(teacher.tokens(), m.config, teacherForced + ": __metadata__.tokens");
        return ForwardInput.forcedBy(teacher);
    }
}
