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
        ForwardInput in = input.resolve(m.config);
        limits.checkTokens(in.length());
        limits.checkMemory(m, in.length(), level, 1);
        Trace t = pass.run(m, in, level);
        if (input.text() != null) t.putExtra("text", input.text());   // the text beside the ids it became
        Common.warnNonFinite(t, pass.name());
        TraceFiles.write(t, out, st);
        System.out.println("wrote " + out + ": " + t.probeNames().size() + " probes, " + in.length() + " tokens, "
                + pass.name() + " (" + pass.dtype() + ")");
        return 0;
    }
}
