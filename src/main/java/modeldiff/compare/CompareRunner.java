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

    /**
     * The comparison every verdict rests on: teacher-forced, op by op ({@link #forced}), with the free-running
     * (propagated) error of each probe beside it for information. {@code FloorMode.TABLE} asks for the old free-running
     * comparison against the fixed table.
     */
    public static Comparison compare(Model model, ForwardInput input, ProbeLevel level, Spec reference, List<Spec> candidates,
                                     FloorMode floorMode, Consumer<String> progress) {
        if (floorMode == FloorMode.TABLE) return free(model, input, level, reference, candidates, floorMode, progress);
        return forced(model, input, level, reference, candidates, true, progress);
    }

    /**
     * Free-running comparison: every pass runs on the input alone and each probe carries all error made before it
     * (propagated error). In bf16 one rounding tie early on makes every later probe differ by bf16 noise, so this is
     * shown for information, not judged (docs/metrics.md).
     */
    public static Comparison free(Model model, ForwardInput input, ProbeLevel level, Spec reference, List<Spec> candidates,
                                  FloorMode floorMode, Consumer<String> progress) {
        input = input.free();
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

    /**
     * Teacher-forced comparison, one candidate at a time: the side that is a pass runs forced by the other side's
     * trace (the reference pass forced by the candidate's trace, or a candidate pass forced by a reference trace), so
     * each probe is one operation's error on identical inputs. Same-precision pairs are judged by the
     * {@link TieBudget}; a float64 side by floors measured on the same forced input. Two traces cannot be forced: that
     * pair is compared free-running and says so. Each probe also carries its propagated (free-running) log-L2.
     */
    public static Comparison forced(Model model, ForwardInput input, ProbeLevel level, Spec reference, List<Spec> candidates,
                                    Consumer<String> progress) {
        return forced(model, input, level, reference, candidates, true, progress);
    }

    /** @param propagated also run free and show each probe's propagated error (one more run per pass) */
    public static Comparison forced(Model model, ForwardInput input, ProbeLevel level, Spec reference, List<Spec> candidates,
                                    boolean propagated, Consumer<String> progress) {
        ForwardInput in = input.free();
        Map<Spec, Trace> freeRuns = new LinkedHashMap<>();
        List<Comparison.Side> refs = new ArrayList<>(), cands = new ArrayList<>();
        List<NoiseFloor> floors = new ArrayList<>();
        int n = 0;
        for (Spec c : candidates) {
            progress.accept("teacher-forced comparison " + (++n) + "/" + candidates.size() + ": " + c.label());
            // A candidate pass runs free only where its trace is the teacher (a pass as reference); forced by a
            // reference trace it needs no free run (the propagated comparison below makes its own when asked).
            Trace candTrace = c.trace != null ? c.trace
                    : reference.pass != null ? freeRuns.computeIfAbsent(c, s -> s.pass.run(model, in, level)) : null;
            Comparison.Side refSide, candSide;
            if (reference.pass != null) {
                refSide = new Comparison.Side(reference.pass.name(), reference.pass.run(model, ForwardInput.forcedBy(candTrace), level));
                candSide = new Comparison.Side(c.label(), candTrace);
            } else if (c.pass != null) {
                refSide = new Comparison.Side(reference.text, reference.trace);
                candSide = new Comparison.Side(c.label(), c.pass.run(model, ForwardInput.forcedBy(reference.trace), level));
            } else {
                refSide = new Comparison.Side(reference.text, reference.trace);
                candSide = new Comparison.Side(c.label(), candTrace);
            }
            refs.add(refSide);
            cands.add(candSide);
            Trace teacher = reference.pass != null ? candTrace : c.pass != null ? reference.trace : null;
            floors.add(forcedFloor(model, refSide.trace(), candSide.trace(), teacher, level));
        }
        Comparison.Side refLabel = refs.get(0);
        LocalError beside = null;
        if (propagated) {
            progress.accept("propagated error (free-running)");
            beside = new Propagated(free(model, in, level, reference, withFreeRuns(candidates, freeRuns), FloorMode.TABLE, s -> { }));
        }
        progress.accept("comparing");
        return Comparison.run(refLabel, refs, cands, floors, beside);
    }

    private static List<Spec> withFreeRuns(List<Spec> candidates, Map<Spec, Trace> runs) {
        List<Spec> out = new ArrayList<>();
        for (Spec c : candidates) out.add(runs.containsKey(c) ? new Spec(c.label(), runs.get(c), null) : c);
        return out;
    }

    /** The verdict rule for one forced pair (see {@link #forced}). */
    static NoiseFloor forcedFloor(Model model, Trace ref, Trace cand, Trace teacher, ProbeLevel level) {
        Precision a = precisionOrNull(ref), b = precisionOrNull(cand);
        if (teacher != null && a != null && a == b && a != Precision.FP64 && TieBudget.opByOp(teacher)) return new TieBudget();
        ForwardInput in = teacher != null ? ForwardInput.forcedBy(teacher) : new ForwardInput(ref.tokens(), ref.positionOffset());
        // A layers-only teacher forces layer inputs only: a tie inside a layer spreads through that layer, so what
        // a correct kernel costs there is measured (lowp forced vs lowp forced with nudged fp32 results).
        boolean float64 = a == Precision.FP64 || b == Precision.FP64;
        return new MeasuredNoiseFloor(model, in, float64 ? MeasuredNoiseFloor.Against.FLOAT64_REFERENCE
                : MeasuredNoiseFloor.Against.SAME_PRECISION);
    }

    private static Precision precisionOrNull(Trace t) {
        try {
            return Precision.parse(t.dtype());
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The free-running comparison's log-L2 per candidate and probe, shown beside the forced verdict. */
    public static final class Propagated implements LocalError {
        private final Comparison free;

        Propagated(Comparison free) {
            this.free = free;
        }

        /** The free-running comparison (routing agreement is read from it: forced runs share the teacher's routing). */
        public Comparison free() {
            return free;
        }

        @Override
        public Double localLogL2(String candidateLabel, String probe) {
            for (Comparison.CandidateResult c : free.candidates())
                if (c.side().label().equals(candidateLabel)) {
                    Comparison.ProbeResult p = c.probe(probe);
                    return p == null ? null : p.metrics().logL2();
                }
            return null;
        }

        @Override
        public String describe() {
            return "propagated: log-L2 of the free-running runs (every earlier difference carried along), for information";
        }

        @Override
        public String label() {
            return "propagated";
        }
    }

    static boolean isFloat64(Trace t) {
        try {
            return Precision.parse(t.dtype()) == Precision.FP64;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
