package modeldiff.hunt;

import modeldiff.compare.MeasuredNoiseFloor;
import modeldiff.compare.Metrics;
import modeldiff.compare.NoiseFloor;
import modeldiff.compare.TieBudget;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.Implementations;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Consumer;

/**
 * Finds the set of catalog fixes that makes our configurable pass reproduce a target trace. The answer is the
 * smallest set whose run <em>matches</em> the target (every probe within the noise floor of the target's precision),
 * not the set with the lowest loss: an extra fix that shaves noise is not part of the explanation.
 * <p>
 * Search: the base pass alone; every applicable single fix; the singles that cut the excess error clearly are kept;
 * then combinations of the kept ones (exhaustive up to {@link #EXHAUSTIVE_LIMIT}, greedy beyond). A fix that first
 * acts at layer k starts from the base run's cached residual stream entering layer k.
 * <p>
 * Pruning (on unless turned off): a candidate run is scored probe by probe as it records them and stopped at the first
 * probe where it is both outside the noise floor (so it can no longer match) and {@link #PRUNE_MARGIN} decades farther
 * from the target than the run it was derived from (the base run for singles and combinations, the set being extended
 * in refinement). Such a set is recorded as stopped, with excess and worst infinite, so it is never kept, never chosen
 * and never extended. The rule is a judgement, not a theorem: a set that is a decade worse at one probe could in
 * principle end closer overall; over every planted and clean fixture trace the results with and without pruning are
 * the same (HuntTest), and {@code --no-prune} runs every set to the end.
 */
public final class Hunt {
    /** Kept singles beyond this are combined greedily (2^8 = 256 runs at most). */
    public static final int EXHAUSTIVE_LIMIT = 8;
    /** A single is kept when it removes at least this share of the base's excess error... */
    public static final double KEEP_SHARE = 0.2;
    /** ...and at least this many decade-probes of it. */
    public static final double KEEP_MIN = 0.5;
    /**
     * A fix joins an explanation that already matches only if it brings the probes this many decades closer on
     * average (mean log-L2): going from "within rounding noise" to "reproduced" is evidence, shaving noise is not.
     */
    public static final double CLEAR = 1.0;
    /** Fixes the refinement may add to the best set found by the combination stage. */
    public static final int MAX_REFINE = 4;
    /** Decades a candidate may be farther from the target than the run it was derived from, at one probe, before it stops. */
    public static final double PRUNE_MARGIN = CLEAR;

    public enum Verdict { MATCH, EXPLAINED, UNEXPLAINED;
        public String id() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** One tried fix set and how close its run came to the target. */
    /** @param mean mean log-L2 over probes: moves with every probe, so a fix that reproduces many probes shows. */
    /**
     * @param trace     the run's probes; null when pruned, or dropped to keep the heap bounded (see {@link #keepTraces})
     * @param digest    a 64-bit hash of every probe's bits: equal runs have equal digests (how equivalents are found
     *                  once traces are dropped)
     * @param stoppedAt the probe where pruning ended the run (then perProbe is partial, worst/mean/excess infinite)
     */
    public record Attempt(List<String> fixes, Map<String, Double> perProbe, double worst, double mean, double excess,
                          boolean matches, String firstExcessProbe, Trace trace, long digest, String stoppedAt,
                          List<Integer> scope) {
        public Attempt(List<String> fixes, Map<String, Double> perProbe, double worst, double mean, double excess,
                       boolean matches, String firstExcessProbe, Trace trace, long digest, String stoppedAt) {
            this(fixes, perProbe, worst, mean, excess, matches, firstExcessProbe, trace, digest, stoppedAt, null);
        }

        public boolean pruned() {
            return stoppedAt != null;
        }

        /** Why the run was not completed: a probe name (pruned there) or a sentence (refused, or nothing to run). */
        public String stopReason() {
            if (stoppedAt == null) return null;
            return stoppedAt.contains(" ") ? stoppedAt : "stopped at " + stoppedAt + " (a decade worse than the run it extends)";
        }

        /**
         * Null when the fixes hold at every layer; else the layers (−1 embed, L final norm and logits) where the target
         * needs them: elsewhere the fixes would put error where the target has none (a bug present in some layers only,
         * visible as such only in a teacher-forced run, where every layer is judged on the target's own inputs).
         */
        @Override
        public List<Integer> scope() {
            return scope;
        }

        public String scopeText() {
            return scope == null ? "" : " (only in " + layers(scope) + ")";
        }

        Attempt withoutTrace() {
            return new Attempt(fixes, perProbe, worst, mean, excess, matches, firstExcessProbe, null, digest, stoppedAt, scope);
        }
    }

    /** Where a scope puts the final norm and logits (after every layer). */
    public static final int HEAD = Integer.MAX_VALUE;

    /** "layers 9–17 and the final norm", "the embedding", "layers 0, 3" from scope indices (−1 embedding, HEAD). */
    static String layers(List<Integer> ls) {
        List<String> parts = new ArrayList<>();
        List<Integer> body = new ArrayList<>();
        for (int l : ls) if (l >= 0 && l != HEAD) body.add(l);
        if (ls.contains(-1)) parts.add("the embedding");
        int i = 0;
        List<String> ranges = new ArrayList<>();
        while (i < body.size()) {
            int j = i;
            while (j + 1 < body.size() && body.get(j + 1) == body.get(j) + 1) j++;
            ranges.add(body.get(i).equals(body.get(j)) ? String.valueOf(body.get(i)) : body.get(i) + "–" + body.get(j));
            i = j + 1;
        }
        if (!ranges.isEmpty()) parts.add((body.size() == 1 ? "layer " : "layers ") + String.join(", ", ranges));
        if (ls.contains(HEAD)) parts.add("the final norm");
        return String.join(" and ", parts);
    }

    /**
     * @param equivalent other fix sets of the same size whose runs are bit-identical to the best one's: on this input
     *                   nothing can tell them apart (e.g. bf16 positions are exact below 256, so rope.bf16_angles and
     *                   rope.inv_freq_lowp compute the same angles there); a longer input or a position offset would.
     */
    public record Result(Verdict verdict, String base, Precision precision, Attempt baseline, Attempt best,
                         List<List<String>> equivalent, List<Attempt> explanations, List<String> candidates,
                         List<String> kept, int runs, double seconds, double forwardSeconds, NoiseFloor floor, int pruned,
                         boolean teacherForced) {
        public double costInForwards() {
            return forwardSeconds > 0 ? seconds / forwardSeconds : Double.NaN;
        }

        public String sentence() {
            return switch (verdict) {
                case MATCH -> base + " already matches the target within the " + precision.id() + (teacherForced ? " tie budget"
                        : " noise floor") + (teacherForced ? ", teacher-forced op by op" : "") + ": nothing to explain";
                case EXPLAINED -> "explained by " + best.fixes() + best.scopeText() + ": " + base
                        + " with these fixes matches the target at every probe" + (teacherForced ? ", teacher-forced op by op" : "")
                        + " (worst log-L2 " + String.format("%.2f", best.worst()) + ")";
                case UNEXPLAINED -> "unexplained: no fix set brings " + base + " within the noise floor; closest "
                        + best.fixes() + " (worst log-L2 " + String.format("%.2f", best.worst()) + ", first excess at "
                        + best.firstExcessProbe() + "); baseline first excess at " + baseline.firstExcessProbe();
            };
        }
    }

    private final Model model;
    private final Trace target;
    private final ForwardInput input;
    private final ProbeLevel level;
    private final String baseSpec;
    private final Precision precision;
    private final NoiseFloor floor;
    private final Consumer<String> progress;
    private final boolean prune;
    private Trace baseTrace;
    /**
     * Runs whose full trace is kept besides the base run's: the best ranked so far (the report charts a few of them).
     * The others keep their scores and digest only, so a hunt's heap does not grow with the number of sets it tries
     * (a Gemma-2B-shaped trace of 64 tokens with every probe is ~0.4 GB).
     */
    private int keepTraces;
    private final Map<List<String>, Attempt> tried = new ConcurrentHashMap<>();

    private Hunt(Model model, Trace target, String baseSpec, boolean prune, boolean forced, Consumer<String> progress) {
        this.prune = prune;
        this.model = model;
        this.target = target;
        // Teacher-forced: every run (base, candidates, floor measurements) computes each probe from the target's own
        // input to it, so a fix is judged where it acts, before any rounding tie can spread (docs/hunt.md).
        this.input = forced ? ForwardInput.forcedBy(target) : new ForwardInput(target.tokens(), target.positionOffset());
        this.level = target.has("layers.0.q") ? ProbeLevel.ALL : ProbeLevel.LAYERS;
        Precision p;
        try {
            p = Precision.parse(target.dtype());
        } catch (IllegalArgumentException e) {
            throw new BadInputException("target trace dtype '" + target.dtype() + "' is not a precision modeldiff knows");
        }
        this.precision = p;
        this.baseSpec = baseSpec != null ? baseSpec : defaultBase(p);
        boolean floatRef = this.baseSpec.equals("reference");
        this.floor = forced && !floatRef && this.baseSpec.equals(defaultBase(p)) && TieBudget.opByOp(target) ? new TieBudget()
                : new MeasuredNoiseFloor(model, input, floatRef ? MeasuredNoiseFloor.Against.FLOAT64_REFERENCE
                : MeasuredNoiseFloor.Against.SAME_PRECISION);
        this.progress = progress;
    }

    /** float64/float32 targets are judged from the float64 reference; bf16/fp16 from the faithful lowp pass. */
    public static String defaultBase(Precision p) {
        return switch (p) {
            case BF16 -> "lowp:bf16";
            case FP16 -> "lowp:fp16";
            case FP64, FP32 -> "reference";
            default -> throw new BadInputException("no hunt base for " + p.id() + " targets");
        };
    }

    public static Result run(Model model, Trace target, String baseSpec, Set<String> only, Consumer<String> progress) {
        return run(model, target, baseSpec, only, true, progress);
    }

    /** @param prune stop candidate runs that are clearly going nowhere (see the class comment) */
    public static Result run(Model model, Trace target, String baseSpec, Set<String> only, boolean prune, Consumer<String> progress) {
        return run(model, target, baseSpec, only, prune, true, progress);
    }

    /** @param forced teacher-forced runs (the default); false runs every candidate free from the tokens (propagated error) */
    public static Result run(Model model, Trace target, String baseSpec, Set<String> only, boolean prune, boolean forced,
                             Consumer<String> progress) {
        return new Hunt(model, target, baseSpec, prune, forced, progress).search(only);
    }

    private Result search(Set<String> only) {
        long t0 = System.nanoTime();
        ForwardPass base = Implementations.create(baseSpec);
        progress.accept("running " + baseSpec);
        baseTrace = base.run(model, input, level);
        double forwardSeconds = (System.nanoTime() - t0) / 1e9;
        // The floor measurement would run this very pass again (the reference, or faithful lowp at the target's dtype).
        if (floor instanceof MeasuredNoiseFloor m) {
            if (baseSpec.equals("reference")) m.reuse(baseTrace, null, null);
            else if (baseSpec.equals(defaultBase(precision))) m.reuse(null, baseTrace, precision);
        }
        long traceBytes = 0;
        for (Trace.Probe p : baseTrace.probes().values()) traceBytes += 8L * p.data().length;
        keepTraces = (int) Math.max(HuntReport.CHART_SETS + 2, Math.min(64, Runtime.getRuntime().maxMemory() * 3 / 10 / Math.max(1, traceBytes)));
        Attempt baseline = score(List.of(), baseTrace);
        tried.put(List.of(), baseline);
        boolean lowp = baseSpec.startsWith("lowp:");
        List<String> candidates = Catalog.candidates(model, lowp, only);
        ForkJoinPool pool = new ForkJoinPool(Math.max(1, Runtime.getRuntime().availableProcessors()));
        try {
            Counter singles = new Counter("trying fixes", candidates.size());
            pool.submit(() -> candidates.parallelStream().forEach(f -> attempt(List.of(f), baseline, singles))).join();
            List<String> kept = new ArrayList<>();
            for (String f : candidates) {
                Attempt a = tried.get(List.of(f));
                double gain = baseline.excess() - a.excess();
                if (a.mean() <= baseline.mean() - CLEAR || (!baseline.matches() && (a.matches()
                        || (gain >= KEEP_MIN && gain >= KEEP_SHARE * baseline.excess())))) kept.add(f);
            }
            kept.sort(Comparator.comparingDouble(f -> tried.get(List.of(f)).excess()));
            progress.accept("combining " + kept.size() + " kept fixes");
            if (kept.size() <= EXHAUSTIVE_LIMIT) {
                List<List<String>> sets = new ArrayList<>();
                for (int mask = 1; mask < (1 << kept.size()); mask++) {
                    List<String> set = new ArrayList<>();
                    for (int i = 0; i < kept.size(); i++) if ((mask & (1 << i)) != 0) set.add(kept.get(i));
                    if (set.size() > 1 && consistent(set)) sets.add(set);
                }
                Counter combined = new Counter("combining kept fixes", sets.size());
                pool.submit(() -> sets.parallelStream().forEach(set -> attempt(set, baseline, combined))).join();
            } else {
                greedy(kept);
            }
            List<Attempt> ranked = new ArrayList<>(tried.values());
            ranked.sort(RANKING);
            progress.accept("refining the best set");
            Attempt best = withTrace(refine(ranked.get(0), candidates));
            ranked = new ArrayList<>(tried.values());
            ranked.sort(RANKING);
            ranked.remove(best);
            ranked.add(0, best);
            Verdict v = best.fixes().isEmpty() ? (best.matches() ? Verdict.MATCH : Verdict.UNEXPLAINED)
                    : best.matches() ? Verdict.EXPLAINED : Verdict.UNEXPLAINED;
            List<List<String>> equivalent = new ArrayList<>();
            for (Attempt a : ranked)
                if (a != best && !a.pruned() && a.fixes().size() == best.fixes().size() && !a.fixes().isEmpty() && a.digest() == best.digest())
                    equivalent.add(a.fixes());
            int pruned = (int) tried.values().stream().filter(Attempt::pruned).count();
            Attempt shown = completed(best);
            if (shown != best) {
                ranked.set(ranked.indexOf(best), shown);
                best = shown;
            }
            return new Result(v, baseSpec, precision, baseline, best, equivalent, ranked, candidates, kept, tried.size(),
                    (System.nanoTime() - t0) / 1e9, forwardSeconds, floor, pruned, input.forced());
        } finally {
            pool.shutdown();
        }
    }

    /** Matching sets first, the smallest of them first; then the closest by worst probe. */
    static final Comparator<Attempt> RANKING = Comparator
            .comparing((Attempt a) -> !a.matches())
            .thenComparing((Attempt a) -> a.matches() ? a.fixes().size() : 0)
            .thenComparing((Attempt a) -> a.scope() != null)
            .thenComparingDouble(Attempt::worst)
            .thenComparingInt(a -> a.fixes().size());

    /**
     * Grows the best set one fix at a time while that either removes clear excess (the set does not match yet: a
     * second bug hidden behind the first) or brings the worst probe {@link #CLEAR} decades closer (it matches only
     * within noise, and the extra fix reproduces the target).
     */
    private Attempt refine(Attempt best, List<String> candidates) {
        for (int round = 0; round < MAX_REFINE; round++) {
            Attempt step = null;
            for (String f : candidates) {
                if (best.fixes().contains(f)) continue;
                List<String> set = new ArrayList<>(best.fixes());
                set.add(f);
                if (!consistent(set)) continue;
                Attempt a = attempt(set, best);
                boolean better = best.matches() ? a.matches() && a.mean() <= best.mean() - CLEAR
                        : a.matches() || a.excess() <= best.excess() - KEEP_MIN;
                if (better && (step == null || RANKING_WORST.compare(a, step) < 0)) step = a;
            }
            if (step == null) return best;
            best = step;
        }
        return best;
    }

    private static final Comparator<Attempt> RANKING_WORST = Comparator
            .comparing((Attempt a) -> !a.matches()).thenComparingDouble(Attempt::excess).thenComparingDouble(Attempt::worst);

    private void greedy(List<String> kept) {
        List<String> current = new ArrayList<>();
        Attempt best = tried.get(List.of());
        while (true) {
            Attempt step = null;
            for (String f : kept) {
                if (current.contains(f)) continue;
                List<String> set = new ArrayList<>(current);
                set.add(f);
                if (!consistent(set)) continue;
                Attempt a = attempt(set, best);
                if (step == null || a.excess() < step.excess()) step = a;
            }
            if (step == null || step.excess() >= best.excess()) return;
            best = step;
            current = new ArrayList<>(step.fixes());
            if (best.matches()) return;
        }
    }

    /** The attempt as recorded, with its trace run again if the budget had dropped it (the best set needs one). */
    private Attempt withTrace(Attempt a) {
        Attempt current = tried.get(a.fixes());
        if (current == null) current = a;
        if (current.trace() != null || current.pruned()) return current;
        ForwardPass pass = Implementations.create(baseSpec, Fixes.of(current.fixes()));
        int from = startFor(current.fixes());
        Trace t = from >= 0 && pass.canReplay() ? merge(tail(pass, from)) : pass.run(model, input, level);
        Attempt again = score(current.fixes(), t);
        tried.put(current.fixes(), again);
        return again;
    }

    /**
     * Where a candidate's run starts: the first layer its fixes can change, and — teacher-forced, where each layer is
     * computed from the target's own inputs — not before the first layer where the base run has excess. Layers before
     * it match already and are taken from the base run, so a bug in the later layers of a large model costs only those
     * layers per candidate. The answer is then run in full ({@link #completed}) to say where else its fixes would act.
     */
    private int startFor(List<String> fixes) {
        int from = firstLayer(fixes);
        if (from < 0 || !input.forced() || baseOver == null) return from;
        java.util.Set<Integer> bad = baseBadLayers();
        if (bad.isEmpty()) return from;
        int firstBad = ((java.util.TreeSet<Integer>) bad).first();
        return firstBad < 0 ? from : Math.max(from, firstBad);
    }

    /**
     * The last layer a candidate's run must reach (−1 the embedding, {@code L} the final norm and logits):
     * teacher-forced, the last layer where the base run has excess. Later layers cannot change a verdict there (each is computed from
     * the target's own input, and a fix that would put error in a layer that matches is scoped away from it), so they
     * are taken from the base run; {@link #completed} runs the answer to the end to say where else it would act.
     */
    private int lastFor() {
        int L = model.config.numLayers;
        // A shortcut like pruning, so --no-prune turns it off too (and HuntTest checks that it changes no answer).
        if (!prune || !input.forced() || baseOver == null || baseBadLayers().isEmpty()) return L;
        return Math.min(L, ((java.util.TreeSet<Integer>) baseBadLayers()).last());
    }

    /** The attempt run from the first layer its fixes change (not skipping matched layers), to report its scope. */
    private Attempt completed(Attempt a) {
        if (a.fixes().isEmpty() || a.pruned()
                || startFor(a.fixes()) == firstLayer(a.fixes()) && lastFor() == model.config.numLayers) return a;
        ForwardPass pass = Implementations.create(baseSpec, Fixes.of(a.fixes()));
        int from = firstLayer(a.fixes());
        Trace t = from >= 0 && pass.canReplay() ? merge(tail(pass, from)) : pass.run(model, input, level);
        Attempt full = score(a.fixes(), t);
        return full.matches() == a.matches() ? full : a;
    }

    /** Drops the traces of all but the {@link #keepTraces} best-ranked attempts (the base run's stays in baseTrace). */
    private synchronized void keepTraceBudget() {
        List<Attempt> holding = new ArrayList<>();
        for (Attempt a : tried.values()) if (a.trace() != null && !a.fixes().isEmpty()) holding.add(a);
        if (holding.size() <= keepTraces) return;
        holding.sort(RANKING);
        for (Attempt a : holding.subList(keepTraces, holding.size())) tried.put(a.fixes(), a.withoutTrace());
    }

    /** 64-bit hash of every probe's name and bits, in trace order. */
    static long digest(Trace t) {
        long h = 0x9E3779B97F4A7C15L;
        for (String name : t.probeNames()) {
            h = mix(h ^ name.hashCode());
            for (double v : t.probe(name).data()) h = mix(h ^ Double.doubleToRawLongBits(v));
        }
        return h;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private int firstLayer(List<String> fixes) {
        int from = Integer.MAX_VALUE;
        for (String f : fixes) from = Math.min(from, Catalog.firstLayerAffected(f, model.config));
        return from;
    }

    private static boolean consistent(List<String> set) {
        for (int i = 0; i < set.size(); i++)
            for (int j = i + 1; j < set.size(); j++) if (Catalog.conflict(set.get(i), set.get(j))) return false;
        return true;
    }

    /**
     * Counts a stage's candidate runs as they start, in the "what (i/n)" form the CLI draws as a bar with time left.
     * The count and its message go out together, so parallel runs report 1..n in order.
     */
    private final class Counter {
        private final String what;
        private final int n;
        private int started;

        Counter(String what, int n) {
            this.what = what;
            this.n = n;
        }

        synchronized void next() {
            progress.accept(what + " (" + ++started + "/" + n + ")");
        }
    }

    private Attempt attempt(List<String> fixes, Attempt parent, Counter counter) {
        counter.next();
        return attempt(fixes, parent);
    }

    /** Runs (or recalls) a fix set; {@code parent} is the run it was derived from, the yardstick for pruning. */
    private Attempt attempt(List<String> fixes, Attempt parent) {
        List<String> key = List.copyOf(fixes);
        Attempt known = tried.get(key);
        if (known != null) return known;
        ForwardPass pass;
        try {
            pass = Implementations.create(baseSpec, Fixes.of(key));
        } catch (BadInputException refused) {
            // The base pass cannot apply this set (cuda refuses softmax.lowp): never chosen, listed as stopped.
            Attempt a = new Attempt(key, Map.of(), Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY,
                    false, null, null, 0, "refused by " + baseSpec);
            tried.put(key, a);
            return a;
        }
        int start = startFor(key), last = lastFor(), end = Math.min(model.config.numLayers, last + 1);
        if (start > last) {
            // Teacher-forced: every layer with excess comes before the first one these fixes change, so the run would
            // equal the base run wherever the target disagrees with it.
            Attempt a = new Attempt(key, Map.of(), Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY,
                    false, null, null, 0, "not run: it acts only after the last layer with excess");
            tried.put(key, a);
            return a;
        }
        boolean partial = pass.canReplay() && (start >= 0 || end < model.config.numLayers);
        Map<String, Double> seen = new LinkedHashMap<>();
        Attempt a;
        try {
            Trace t = Trace.watching(prune ? probe -> watch(probe, parent, seen) : probe -> { },
                    () -> !partial ? pass.run(model, input, level)
                            : start >= 0 ? tail(pass, start, end) : pass.runLayers(model, input, level, 0, end, null));
            a = score(key, partial ? merge(t) : t);
        } catch (Trace.Stop stop) {
            String at = seen.keySet().stream().reduce((x, y) -> y).orElse(null);
            a = new Attempt(key, seen, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, false,
                    at, null, 0, at);
        }
        tried.put(key, a);
        keepTraceBudget();
        return a;
    }

    /** Scores one probe as the candidate records it and stops the run when it is clearly going nowhere. */
    private void watch(Trace.Probe probe, Attempt parent, Map<String, Double> seen) {
        Trace.Probe t = target.probe(probe.name());
        if (t == null || t.cols() != probe.cols() || t.rows() != probe.rows()) return;
        double e = error(t, probe);
        seen.put(probe.name(), e);
        Double before = parent.perProbe().get(probe.name());
        if (before == null || !Double.isFinite(before)) return;
        // Forced: excess in a layer where the base matches may be scoped away (a bug in some layers only), so it
        // cannot end the run.
        // (With no excess anywhere there is nothing to scope to, and runs stop as before.)
        if (input.forced() && baseOver != null && !baseBadLayers().isEmpty()
                && !baseBadLayers().contains(ProbeLevel.layerOf(probe.name(), model.config.numLayers)))
            return;
        if (excessAt(probe.name(), t, probe, e) > 0 && e > before + PRUNE_MARGIN) throw new Trace.Stop(probe.name());
    }

    /** Decades beyond what precision explains at one probe (tie budget when counting ties, else above the floor). */
    private double excessAt(String name, Trace.Probe target, Trace.Probe run, double logL2) {
        return floor.excess(precision, name, target.data(), run.data(), logL2);
    }

    private static double error(Trace.Probe target, Trace.Probe run) {
        Metrics.ProbeMetrics m = Metrics.compare(target.data(), run.data(), target.rows(), target.cols());
        return m.nonFinite() > 0 ? Double.POSITIVE_INFINITY : m.logL2();
    }

    /** Runs the layers from {@code from} on, starting from the base run's residual stream entering it. */
    private Trace tail(ForwardPass pass, int from) {
        return tail(pass, from, model.config.numLayers);
    }

    /** Runs layers [from, to) (to = L: and the head), starting from the base run's residual stream entering it. */
    private Trace tail(ForwardPass pass, int from, int to) {
        int layers = model.config.numLayers;
        String entry = from == 0 ? "embed" : "layers." + (from - 1);
        // Forced: layer `from` starts from the target's own residual stream, as the forced base run's did.
        Trace.Probe in = input.forced() && target.has(entry) ? target.probe(entry) : baseTrace.probe(entry);
        return pass.runLayers(model, input, level, Math.min(from, layers), Math.max(to, Math.min(from, layers)), in.data());
    }

    /** The base run's probes before the tail, the tail's after: the whole trace of the replayed run. */
    private Trace merge(Trace tail) {
        Trace merged = new Trace(tail.producer(), tail.dtype(), tail.device(), input.tokens(), input.positionOffset());
        for (String name : baseTrace.probeNames()) {
            Trace.Probe p = tail.has(name) ? tail.probe(name) : baseTrace.probe(name);
            merged.put(name, p.cols(), p.data());
        }
        return merged;
    }

    private Attempt score(List<String> fixes, Trace run) {
        Map<String, Double> per = new LinkedHashMap<>(), over = new LinkedHashMap<>();
        for (String name : target.probeNames()) {
            Trace.Probe t = target.probe(name), r = run.probe(name);
            if (r == null || modeldiff.compare.RoutingAgreement.isExpertChoice(name)) continue;   // categorical
            double e = error(t, r);
            per.put(name, e);
            over.put(name, Double.isNaN(e) ? Double.POSITIVE_INFINITY : excessAt(name, t, r, e));
        }
        List<Integer> scope = scope(fixes, over);
        double worst = Double.NEGATIVE_INFINITY, excess = 0, sum = 0;
        String firstExcess = null;
        Attempt base = tried.get(List.of());
        for (String name : per.keySet()) {
            int layer = ProbeLevel.layerOf(name, model.config.numLayers);
            boolean useBase = scope != null && !scope.contains(layer == model.config.numLayers ? HEAD : layer);
            double e = useBase ? base.perProbe().get(name) : per.get(name);
            double o = useBase ? baseOver.get(name) : over.get(name);
            if (useBase) per.put(name, e);
            worst = Math.max(worst, e);
            sum += Double.isFinite(e) ? e : 20;
            if (o > 0) {
                excess += Double.isFinite(o) ? o : 20;
                if (firstExcess == null) firstExcess = name;
            }
        }
        if (fixes.isEmpty()) baseOver = over;
        return new Attempt(fixes, per, worst, per.isEmpty() ? 0 : sum / per.size(), excess, firstExcess == null, firstExcess, run,
                digest(run), null, scope);
    }

    /** The base run's excess per probe (set when the base is scored; the yardstick of scoping). */
    private Map<String, Double> baseOver;
    private java.util.Set<Integer> baseBad;

    /** Layers (−1 embed … L head) where the base run has excess. */
    private synchronized java.util.Set<Integer> baseBadLayers() {
        if (baseBad == null) {
            java.util.Set<Integer> b = new java.util.TreeSet<>();
            for (Map.Entry<String, Double> e : baseOver.entrySet())
                if (e.getValue() > 0) b.add(ProbeLevel.layerOf(e.getKey(), model.config.numLayers));
            baseBad = b;
        }
        return baseBad;
    }

    /**
     * Teacher-forced only, where layers are judged independently: null when the fixes put no excess anywhere; else
     * the layers where the base run has excess (the only layers the fixes are then taken to apply to). Layers where the
     * base matches and the fixes would not stay as the base computed them.
     */
    private List<Integer> scope(List<String> fixes, Map<String, Double> over) {
        if (fixes.isEmpty() || !input.forced() || baseOver == null) return null;
        int L = model.config.numLayers;
        java.util.TreeSet<Integer> baseBad = new java.util.TreeSet<>(), runBad = new java.util.TreeSet<>();
        for (Map.Entry<String, Double> e : over.entrySet()) {
            int layer = ProbeLevel.layerOf(e.getKey(), L);
            if (e.getValue() > 0) runBad.add(layer);
            Double b = baseOver.get(e.getKey());
            if (b != null && b > 0) baseBad.add(layer);
        }
        runBad.removeAll(baseBad);
        if (runBad.isEmpty()) return null;
        List<Integer> scope = new ArrayList<>();
        for (int l : baseBad) scope.add(l == L ? HEAD : l);
        return scope;
    }
}
