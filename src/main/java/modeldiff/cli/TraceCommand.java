package modeldiff.cli;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.DType;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "trace", mixinStandardHelpOptions = true,
        description = "Run one implementation on a model and write its probes as a trace file.")
final class TraceCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Model folder (config.json + safetensors).")
    Path model;

    @Option(names = "--impl", defaultValue = "reference", description = "Implementation (default: ${DEFAULT-VALUE}).")
    String impl;

    @Option(names = "--fixes", paramLabel = "id,...",
            description = "Run the implementation with these catalog fixes applied (`modeldiff fixes`): a deliberately buggy run, e.g. a hunt target.")
    String fixes;

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

    @Option(names = "--debug", description = "Show stack traces.")
    boolean debug;

    @Override
    public Integer call() {
        ProbeLevel level = ProbeLevel.parse(probes);
        DType st = switch (storage.toLowerCase()) {
            case "f64", "float64" -> DType.F64;
            case "f32", "float32" -> DType.F32;
            default -> throw new IllegalArgumentException("--storage must be f64 or f32, got '" + storage + "'");
        };
        Common.checkOutput(out, model, force);
        limits.checkTimeout();
        ForwardPass pass = limits.timed(Implementations.create(impl, modeldiff.forward.Fixes.parse(fixes)));
        Model m = Model.open(model);
        ForwardInput in = teacherForced == null ? input.resolve(m.config) : forcedInput(m);
        limits.checkTokens(in.length());
        limits.checkMemory(m, in.length(), level, 1);
        Trace t = pass.run(m, in, level);
        if (teacherForced != null) t.putExtra("teacher_file", teacherForced.getFileName().toString());
        Common.warnNonFinite(t, pass.name());
        TraceFiles.write(t, out, st);
        System.out.println("wrote " + out + ": " + t.probeNames().size() + " probes, " + in.length() + " tokens, "
                + pass.name() + " (" + pass.dtype() + ")" + (in.forced() ? ", teacher-forced by " + teacherForced : ""));
        return 0;
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
