package modeldiff.compare;

import modeldiff.trace.Trace;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Whether two runs of a mixture-of-experts model sent each token to the same experts, layer by layer: the fraction of
 * tokens whose chosen set (the {@code layers.i.experts} probe; order within the k does not count) matches the
 * reference's, and for each token that flipped, the reference's top-k margin there (its k-th largest router logit
 * minus its (k+1)-th) next to how far the candidate's router logits moved at that token.
 * <p>
 * A flip is a <b>near-tie</b> when the margin is at most twice the largest change of a router logit at that token:
 * moving two logits that far in opposite directions closes the gap, so rounding alone explains it. Other flips are
 * unexplained. Without router logits on both sides a flip's cause stays unknown.
 */
public record RoutingAgreement(List<Layer> layers) {

    /** One token whose chosen experts differ; margin and logit change are NaN where a side lacks router logits. */
    public record Flip(int token, int[] reference, int[] candidate, double margin, double logitChange) {
        public boolean nearTie() {
            return margin <= 2 * logitChange;
        }
    }

    public record Layer(int layer, int tokens, int agreeing, List<Flip> flips) {
        public double agreement() {
            return tokens == 0 ? 1.0 : (double) agreeing / tokens;
        }

        public long nearTies() {
            return flips.stream().filter(Flip::nearTie).count();
        }
    }

    /**
     * Whether a probe holds chosen expert ids ("layers.i.experts"): categorical, so it is judged here by set
     * agreement, never by log-L2 against a noise floor (an exact tie broken the other way is not an error).
     */
    public static boolean isExpertChoice(String probe) {
        return probe.startsWith("layers.") && probe.endsWith(".experts");
    }

    /**
     * Routing agreement of candidate {@code i} of a comparison. A teacher-forced comparison's runs take the teacher's
     * expert choices, so the agreement is read from its free-running runs when it has them (compare's default), else
     * from the compared traces.
     */
    public static RoutingAgreement ofCandidate(Comparison cmp, int i) {
        Comparison.CandidateResult c = cmp.candidates().get(i);
        if (cmp.localError() instanceof CompareRunner.Propagated p)
            for (Comparison.CandidateResult f : p.free().candidates())
                if (f.side().label().equals(c.side().label())) return of(p.free().reference().trace(), f.side().trace());
        return of(cmp.reference().trace(), c.side().trace());
    }

    /** Routing agreement for every layer both traces record experts for; empty for dense models. */
    public static RoutingAgreement of(Trace reference, Trace candidate) {
        List<Layer> out = new ArrayList<>();
        for (String name : reference.probeNames()) {
            if (!isExpertChoice(name)) continue;
            Trace.Probe r = reference.probe(name), c = candidate.probe(name);
            if (c == null || c.rows() != r.rows() || c.cols() != r.cols()) continue;
            int layer = Integer.parseInt(name.substring(7, name.length() - ".experts".length()));
            String logits = "layers." + layer + ".router_logits";
            out.add(layer(layer, r, c, reference.probe(logits), candidate.probe(logits)));
        }
        return new RoutingAgreement(List.copyOf(out));
    }

    private static Layer layer(int layer, Trace.Probe r, Trace.Probe c, Trace.Probe refLogits, Trace.Probe candLogits) {
        int T = r.rows(), k = r.cols(), agree = 0;
        List<Flip> flips = new ArrayList<>();
        for (int t = 0; t < T; t++) {
            int[] a = ids(r, t), b = ids(c, t);
            if (Arrays.equals(sorted(a), sorted(b))) {
                agree++;
                continue;
            }
            double margin = refLogits == null ? Double.NaN : margin(refLogits.row(t), k);
            double change = Double.NaN;
            if (refLogits != null && candLogits != null && candLogits.cols() == refLogits.cols()) {
                change = 0;
                for (int e = 0; e < refLogits.cols(); e++)
                    change = Math.max(change, Math.abs(candLogits.at(t, e) - refLogits.at(t, e)));
            }
            flips.add(new Flip(t, a, b, margin, change));
        }
        return new Layer(layer, T, agree, List.copyOf(flips));
    }

    /** k-th largest minus (k+1)-th largest; +∞ when every expert is chosen. */
    static double margin(double[] logits, int k) {
        if (k >= logits.length) return Double.POSITIVE_INFINITY;
        double[] s = logits.clone();
        Arrays.sort(s);
        return s[s.length - k] - s[s.length - k - 1];
    }

    private static int[] ids(Trace.Probe p, int t) {
        int[] out = new int[p.cols()];
        for (int j = 0; j < out.length; j++) out[j] = (int) Math.round(p.at(t, j));
        return out;
    }

    private static int[] sorted(int[] a) {
        int[] s = a.clone();
        Arrays.sort(s);
        return s;
    }

    /** Whether every flip (if any) is a near-tie: routing differences that rounding alone explains. */
    public boolean onlyNearTies() {
        return layers.stream().allMatch(l -> l.flips().stream().allMatch(Flip::nearTie));
    }

    /**
     * A trace holding only {@code t}'s expert choices: a teacher that forces a run's routing and nothing else
     * (forward/Recorder forces only the probes its teacher has), so a run can be judged on the reference's routing.
     */
    public static Trace choicesOf(Trace t) {
        Trace out = new Trace(t.producer() + " (expert choices only)", t.dtype(), t.device(), t.tokens(), t.positionOffset());
        for (String name : t.probeNames())
            if (isExpertChoice(name)) out.put(name, t.probe(name).cols(), t.probe(name).data());
        return out;
    }

    public boolean isEmpty() {
        return layers.isEmpty();
    }

    public boolean complete() {
        return layers.stream().allMatch(l -> l.agreeing() == l.tokens());
    }

    /** One line per layer, e.g. "layer 2: 31/32 tokens routed alike; flips: token 7 [1, 4] vs [1, 6] (margin 0.0039, near-tie)". */
    public List<String> describe() {
        List<String> out = new ArrayList<>();
        for (Layer l : layers) {
            StringBuilder sb = new StringBuilder("layer " + l.layer() + ": " + l.agreeing() + "/" + l.tokens() + " tokens routed alike");
            for (int i = 0; i < l.flips().size(); i++) {
                Flip f = l.flips().get(i);
                sb.append(i == 0 ? "; flips: " : ", ").append("token ").append(f.token()).append(' ')
                        .append(Arrays.toString(f.reference())).append(" vs ").append(Arrays.toString(f.candidate()));
                if (!Double.isNaN(f.margin()))
                    sb.append(String.format(java.util.Locale.ROOT, " (margin %.3g%s)", f.margin(),
                            Double.isNaN(f.logitChange()) ? "" : f.nearTie() ? ", near-tie" : ", not a near-tie"));
            }
            out.add(sb.toString());
        }
        return out;
    }
}
