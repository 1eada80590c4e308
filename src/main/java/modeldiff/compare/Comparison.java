package modeldiff.compare;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * A reference trace against one or more candidate traces, probe by probe, with a verdict per candidate: which probes
 * stay within the noise floor of the precision involved, and where the first excess error appears.
 * <p>
 * Probes are compared in the reference's order and only where both sides recorded them; the rest are listed as
 * missing. Tokens and position offset must match exactly, else the numbers would compare different computations.
 */
public final class Comparison {
    /** One side of a comparison: a trace and how the user named it (file path or implementation spec). */
    public record Side(String label, Trace trace) {
    }

    public enum Status {
        EXPECTED, EXCESS;

        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * One probe of one candidate. {@code failure} marks NaN/Inf (in the candidate's values or the metric itself):
     * always excess, whatever the floor. {@code localLogL2} is null unless a {@link LocalError} source could replay it.
     * {@code nonFiniteByToken} counts the candidate's NaN/Inf per token.
     */
    public record ProbeResult(ProbeId id, Metrics.ProbeMetrics metrics, double noiseFloor, Status status, boolean failure,
                              Double localLogL2, int[] nonFiniteByToken, double excessDecades, UlpDiff ulps) {
        /** A probe judged by its log-L2 against a bound (no element counts). */
        public ProbeResult(ProbeId id, Metrics.ProbeMetrics metrics, double noiseFloor, Status status, boolean failure,
                           Double localLogL2, int[] nonFiniteByToken) {
            this(id, metrics, noiseFloor, status, failure, localLogL2, nonFiniteByToken, metrics.logL2() - noiseFloor, null);
        }

        public String name() {
            return id.name();
        }

        /**
         * Per-token log-L2 for display: the metric's value, except NaN for a token with NaN/Inf in the candidate
         * (the metric skips those elements, so an all-NaN row would read as "identical").
         */
        public double[] perTokenLogL2() {
            double[] v = metrics.perTokenLogL2().clone();
            for (int t = 0; t < v.length; t++) if (nonFiniteByToken[t] > 0) v[t] = Double.NaN;
            return v;
        }

        /**
         * Decades of error that precision does not explain (positive: excess): log-L2 minus the floor, or, for a
         * same-precision teacher-forced comparison, decades above the {@link TieBudget}.
         */
        @Override
        public double excessDecades() {
            return excessDecades;
        }
    }

    /** The first excess probe of a candidate, refined to the first excess sub-layer step of its layer when recorded. */
    public record Divergence(ProbeResult probe, Precision precision) {
        public String sentence() {
            ProbeResult p = probe;
            String where = "diverges first at " + p.id().describe() + ": ";
            Metrics.ProbeMetrics m = p.metrics();
            if (m.nonFinite() > 0)
                return where + m.nonFinite() + " non-finite value" + (m.nonFinite() == 1 ? "" : "s") + " (NaN/Inf) in the candidate";
            if (Double.isNaN(m.logL2())) return where + "error is NaN (non-finite values in the reference)";
            if (Double.isInfinite(m.logL2())) return where + "the reference is exactly zero and the candidate is not";
            if (p.ulps() != null)
                return where + p.ulps().describe() + String.format(Locale.ROOT, ", %.1f decades above the %s tie budget",
                        p.excessDecades(), precision.id());
            return where + String.format(Locale.ROOT, "excess error %.1f decades above what %s costs", p.excessDecades(), precision.id());
        }
    }

    public record CandidateResult(Side side, Precision precision, List<ProbeResult> probes, Metrics.LogitMetrics logits,
                                  List<String> missingInCandidate, List<String> missingInReference, Divergence firstDivergence) {
        public boolean excess() {
            return firstDivergence != null;
        }

        public ProbeResult probe(String name) {
            for (ProbeResult p : probes) if (p.name().equals(name)) return p;
            return null;
        }

        public String verdict() {
            if (firstDivergence != null) return firstDivergence.sentence();
            if (probes.isEmpty()) return "nothing to compare: no probe is recorded on both sides";
            boolean ties = probes.stream().anyMatch(p -> p.ulps() != null);   // same precision, teacher-forced
            return "no excess error: every probe within the " + precision.id() + (ties ? " tie budget" : " noise floor");
        }
    }

    private final Side reference;
    private final List<CandidateResult> candidates;
    private final int numLayers;
    private final NoiseFloor noiseFloor;
    private final LocalError localError;

    private Comparison(Side reference, List<CandidateResult> candidates, int numLayers, NoiseFloor noiseFloor, LocalError localError) {
        this.reference = reference;
        this.candidates = Collections.unmodifiableList(candidates);
        this.numLayers = numLayers;
        this.noiseFloor = noiseFloor;
        this.localError = localError;
    }

    /**
     * @param localError null when no replay is available (today always); probes then carry a null local error.
     * @throws BadInputException when tokens, offsets or probe widths differ, or a precision has no noise floor.
     */
    public static Comparison run(Side reference, List<Side> candidates, NoiseFloor floor, LocalError localError) {
        if (candidates.isEmpty()) throw new IllegalArgumentException("no candidate to compare");
        List<Side> refs = new ArrayList<>();
        List<NoiseFloor> floors = new ArrayList<>();
        for (int i = 0; i < candidates.size(); i++) {
            refs.add(reference);
            floors.add(floor);
        }
        return run(reference, refs, candidates, floors, localError);
    }

    /**
     * Each candidate against its own reference run and floor: in a teacher-forced comparison the reference pass is
     * run once per candidate, forced by that candidate's trace ({@link CompareRunner}). {@code reference} names the
     * reference for reports.
     */
    public static Comparison run(Side reference, List<Side> references, List<Side> candidates, List<NoiseFloor> floors,
                                 LocalError localError) {
        if (candidates.isEmpty()) throw new IllegalArgumentException("no candidate to compare");
        int layers = 0;
        for (String n : reference.trace().probeNames()) {
            ProbeId id = ProbeId.parse(n);
            if (id.kind() == ProbeId.Kind.LAYER || id.kind() == ProbeId.Kind.SUB_LAYER) layers = Math.max(layers, id.layer() + 1);
        }
        List<CandidateResult> out = new ArrayList<>();
        for (int i = 0; i < candidates.size(); i++)
            out.add(candidate(references.get(i), candidates.get(i), floors.get(i), localError));
        return new Comparison(reference, out, layers, floors.get(0), localError);
    }

    private static CandidateResult candidate(Side reference, Side cand, NoiseFloor floor, LocalError localError) {
        Trace ref = reference.trace();
        checkSameInput(reference, cand);
        Precision precision = coarser(precisionOf(reference), precisionOf(cand));
        Trace c = cand.trace();
        List<ProbeResult> probes = new ArrayList<>();
        List<String> missingInCandidate = new ArrayList<>();
        Metrics.LogitMetrics logits = null;
        for (String name : ref.probeNames()) {
            if (RoutingAgreement.isExpertChoice(name)) continue;         // judged by RoutingAgreement instead
            Trace.Probe r = ref.probe(name), p = c.probe(name);
            if (p == null) {
                missingInCandidate.add(name);
                continue;
            }
            if (r.cols() != p.cols())
                throw new BadInputException("probe '" + name + "' is " + r.cols() + " wide in " + reference.label()
                        + " but " + p.cols() + " in " + cand.label() + ": not the same model?");
            probes.add(probe(name, r, p, precision, floor, localError == null ? null : localError.localLogL2(cand.label(), name),
                    cand.label() + " against " + reference.label()));
            if (name.equals("logits")) logits = Metrics.logits(r.data(), p.data(), r.rows(), r.cols());
        }
        List<String> missingInReference = new ArrayList<>();
        for (String name : c.probeNames()) if (!ref.has(name)) missingInReference.add(name);
        return new CandidateResult(cand, precision, Collections.unmodifiableList(probes), logits,
                List.copyOf(missingInCandidate), List.copyOf(missingInReference), firstDivergence(probes, precision));
    }

    private static ProbeResult probe(String name, Trace.Probe r, Trace.Probe p, Precision precision, NoiseFloor floor,
                                     Double local, String what) {
        Metrics.ProbeMetrics m = Metrics.compare(r.data(), p.data(), r.rows(), r.cols());
        double bound, excess;
        UlpDiff ulps = null;
        try {
            bound = floor.upperBound(precision, name);
            if (floor.countsTies()) {
                ulps = TieBudget.diff(r.data(), p.data(), precision);
                excess = TieBudget.excess(ulps, precision);
            } else {
                excess = floor.excess(precision, name, r.data(), p.data(), m.logL2());
            }
        } catch (BadInputException e) {
            throw new BadInputException(what + ": " + e.getMessage(), e);
        }
        boolean failure = m.nonFinite() > 0 || !Double.isFinite(m.logL2());
        // Written as !(x <= 0) so a NaN error lands in EXCESS too.
        Status status = failure || !(excess <= 0) ? Status.EXCESS : Status.EXPECTED;
        return new ProbeResult(ProbeId.parse(name), m, bound, status, failure, local,
                Metrics.nonFinitePerRow(p.data(), p.rows(), p.cols()), excess, ulps);
    }

    /**
     * The first excess probe in trace order. When it lies in a layer that recorded sub-layer steps, the sentence names
     * the first excess step of that layer (in the order a layer computes them), since that is where to start reading
     * code; a layer whose output exceeds while no step does is named as the layer itself.
     */
    static Divergence firstDivergence(List<ProbeResult> probes, Precision precision) {
        ProbeResult first = null;
        for (ProbeResult p : probes)
            if (p.status() == Status.EXCESS) {
                first = p;
                break;
            }
        if (first == null) return null;
        ProbeId.Kind k = first.id().kind();
        if (k == ProbeId.Kind.LAYER || k == ProbeId.Kind.SUB_LAYER) {
            int layer = first.id().layer();
            ProbeResult best = null;
            int bestRank = Integer.MAX_VALUE;
            for (ProbeResult p : probes) {
                if (p.status() != Status.EXCESS || p.id().kind() != ProbeId.Kind.SUB_LAYER || p.id().layer() != layer) continue;
                int rank = subLayerRank(p.id().subLayer());
                if (best == null || rank < bestRank) {
                    best = p;
                    bestRank = rank;
                }
            }
            if (best != null) first = best;
        }
        return new Divergence(first, precision);
    }

    /** Position of a step in a layer's computation; unknown steps (other producers) sort after the known ones. */
    private static int subLayerRank(String sub) {
        int i = modeldiff.forward.ProbeLevel.SUB_LAYER.indexOf(sub);
        return i < 0 ? Integer.MAX_VALUE - 1 : i;
    }

    private static Precision precisionOf(Side s) {
        try {
            return Precision.parse(s.trace().dtype());
        } catch (IllegalArgumentException e) {
            throw new BadInputException(s.label() + ": dtype: " + e.getMessage(), e);
        }
    }

    /**
     * The coarser of two precisions (larger unit roundoff). A comparison is only as sharp as its less precise side: a
     * float32 reference against a float64 candidate still differs by what float32 costs.
     */
    static Precision coarser(Precision a, Precision b) {
        return a.epsilon() >= b.epsilon() ? a : b;
    }

    private static void checkSameInput(Side ref, Side cand) {
        Trace r = ref.trace(), c = cand.trace();
        if (!Arrays.equals(r.tokens(), c.tokens()))
            throw new BadInputException(ref.label() + " and " + cand.label() + " ran on different tokens ("
                    + abbreviate(r.tokens()) + " vs " + abbreviate(c.tokens()) + "); compare traces of the same input");
        if (r.positionOffset() != c.positionOffset())
            throw new BadInputException(ref.label() + " and " + cand.label() + " ran at different position offsets ("
                    + r.positionOffset() + " vs " + c.positionOffset() + "); compare traces of the same input");
    }

    private static String abbreviate(int[] ids) {
        if (ids.length <= 12) return Arrays.toString(ids);
        return Arrays.toString(Arrays.copyOf(ids, 12)).replace("]", ", … " + ids.length + " tokens]");
    }

    public Side reference() {
        return reference;
    }

    public List<CandidateResult> candidates() {
        return candidates;
    }

    /** Layers seen in the reference's probe names (L on the layer axis: final_norm sits at L, logits at L+1). */
    public int numLayers() {
        return numLayers;
    }

    public NoiseFloor noiseFloor() {
        return noiseFloor;
    }

    /** Null when no local-error replay was available. */
    public LocalError localError() {
        return localError;
    }

    public boolean anyExcess() {
        return candidates.stream().anyMatch(CandidateResult::excess);
    }

    /** One sentence per candidate; prefixed with the candidate's label when there are several. */
    public String verdict() {
        if (candidates.size() == 1) return candidates.get(0).verdict();
        StringBuilder sb = new StringBuilder();
        for (CandidateResult c : candidates) {
            if (sb.length() > 0) sb.append("; ");
            sb.append(c.side().label()).append(": ").append(c.verdict());
        }
        return sb.toString();
    }
}
