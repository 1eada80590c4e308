package modeldiff.compare;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The compare workflow as a library call, shared by `modeldiff compare`, `demo` and the release test suite: resolve
 * each side (trace file or implementation), run the implementations on one input, pick the noise floor, attach local
 * error where the candidate can replay layers, and compare.
 */
public final class CompareRunner {
    private CompareRunner() {
    }

    public enum FloorMode {
        /** Floors measured on this model and input ({@link MeasuredNoiseFloor}). */
        MEASURED,
        /** The fixed per-precision table ({@link TableNoiseFloor}). */
        TABLE
    }

    /** One side as the user named it: a trace already on disk, or a pass still to run. */
    public record Spec(String text, Trace trace, ForwardPass pass) {
        /** An existing file is a trace; a path-looking spec that does not exist is an error, not an implementation. */
        public static Spec parse(String spec, String option) {
            Path p = null;
            try {
                p = Path.of(spec);
            } catch (InvalidPathException ignored) {
                // not a path: must be an implementation name
            }
            if (p != null && Files.isRegularFile(p)) return new Spec(spec, TraceFiles.read(p), null);
            if (p != null && (Files.exists(p) || spec.contains("/") || spec.contains(java.io.File.separator) || spec.endsWith(".safetensors")))
                throw new BadInputException(option + " " + spec + ": no such trace file");
            try {
                return new Spec(spec, null, Implementations.create(spec));
            } catch (BadInputException e) {
                throw new BadInputException(option + " " + spec + ": neither a trace file nor an implementation; available: "
                        + String.join(", ", Implementations.available()), e);
            }
        }

        public static Spec of(String label, Trace trace) {
            return new Spec(label, trace, null);
        }

        public static Spec of(ForwardPass pass) {
            return new Spec(pass.name(), null, pass);
        }

        String label() {
            return trace != null ? text : pass.name();
        }
    }

    /** The input every implementation runs on: explicit tokens win, else the first trace's, else {@code fallback}. */
    public static ForwardInput inputFor(List<Spec> specs, ForwardInput explicit, ForwardInput fallback) {
        if (explicit != null) return explicit;
        for (Spec s : specs) if (s.trace != null) return new ForwardInput(s.trace.tokens(), s.trace.positionOffset());
        return fallback;
    }

    /** Record as much as the traces hold, so their sub-layer probes have a counterpart. */
    public static ProbeLevel levelFor(List<Spec> specs) {
        for (Spec s : specs)
            if (s.trace != null)
                for (String n : s.trace.probeNames())
                    if (ProbeId.parse(n).kind() == ProbeId.Kind.SUB_LAYER) return ProbeLevel.ALL;
        return ProbeLevel.LAYERS;
    }

    public static Comparison compare(Model model, ForwardInput input, ProbeLevel level, Spec reference, List<Spec> candidates,
                                     FloorMode floorMode, Consumer<String> progress) {
        List<Spec> all = new ArrayList<>();
        all.add(reference);
        all.addAll(candidates);
        int toRun = (int) all.stream().filter(s -> s.pass != null).count(), ran = 0;
        List<Comparison.Side> sides = new ArrayList<>();
        Map<String, ForwardPass> replayable = new LinkedHashMap<>();
        for (Spec s : all) {
            if (s.trace != null) {
                sides.add(new Comparison.Side(s.text, s.trace));
            } else {
                progress.accept("running " + s.pass.name() + " (" + (++ran) + "/" + toRun + ")");
                sides.add(new Comparison.Side(s.pass.name(), s.pass.run(model, input, level)));
                if (s != reference && s.pass.canReplay()) replayable.put(s.pass.name(), s.pass);
            }
        }
        Comparison.Side ref = sides.get(0);
        NoiseFloor floor = floorMode == FloorMode.TABLE ? TableNoiseFloor.provisionalDefault()
                : new MeasuredNoiseFloor(model, input, isFloat64(ref.trace()) ? MeasuredNoiseFloor.Against.FLOAT64_REFERENCE
                : MeasuredNoiseFloor.Against.SAME_PRECISION);
        LocalError local = replayable.isEmpty() ? null : new ReplayLocalError(model, input, ref.trace(), replayable);
        progress.accept("comparing");
        return Comparison.run(ref, sides.subList(1, sides.size()), floor, local);
    }

    static boolean isFloat64(Trace t) {
        try {
            return Precision.parse(t.dtype()) == Precision.FP64;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
