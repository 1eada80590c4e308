package modeldiff.forward.reference;

import modeldiff.forward.Fixes;
import modeldiff.forward.Recorder;
import modeldiff.model.BadInputException;
import modeldiff.forward.kernel.Parallel;
import modeldiff.model.MoeSpec;
import modeldiff.model.MoeWeights;
import modeldiff.numeric.Activation;

/**
 * A mixture-of-experts MLP in float64, written from the math: router logits, the router's choice of k experts and
 * their weights, and the weighted sum of the chosen experts' gated MLPs. Nothing is rounded; the order of the sum
 * over experts does not matter at float64's precision.
 */
final class ReferenceMoe {
    private ReferenceMoe() {
    }

    /** What a router decided for T tokens: its logits [T, E], the chosen expert ids [T, k], their weights [T, k]. */
    record Routing(double[] logits, int[] experts, double[] weights) {
        /** The chosen ids as a probe (float values of integer ids). */
        double[] expertsAsValues() {
            double[] out = new double[experts.length];
            for (int i = 0; i < out.length; i++) out[i] = experts[i];
            return out;
        }
    }

    /** Configuration of one MoE call: the routing as the config says, the fixes that change it, the activation. */
    record Setup(MoeSpec spec, Fixes fixes, Activation activation, Parallel par, double[] correctionBias) {
        Setup(MoeSpec spec, Fixes fixes, Activation activation, Parallel par) {
            this(spec, fixes, activation, par, null);
        }

        /** With the layer's selection-only correction bias (sigmoid routers), read exactly. */
        Setup withBias(MoeWeights w) {
            if (w.correctionBias() == null) return this;
            double[] b = modeldiff.model.TensorStore.readDoubles(w.correctionBias(), 0, spec.numExperts);
            return new Setup(spec, fixes, activation, par, b);
        }
    }

    /**
     * Router logits, then the choice, each recorded ({@code <prefix>router_logits}, {@code <prefix>experts}); in a
     * teacher-forced run the pass continues with the teacher's logits and, where the teacher recorded them, its
     * chosen experts (weighted by this router's rule from the logits it continues with).
     */
    static Routing route(Recorder rec, String prefix, double[] m, int T, MoeWeights w, Setup s) {
        MoeSpec spec = s.spec();
        double[] logits = rec.put(prefix + "router_logits", spec.numExperts, ReferencePass.linear(m, T, w.router(), s.par()));
        s = s.withBias(w);
        Routing own = route(logits, T, s, null);
        double[] mine = own.expertsAsValues();
        double[] chosen = rec.put(prefix + "experts", spec.topK, mine);
        return chosen == mine ? own : route(logits, T, s, ids(chosen, spec.numExperts, prefix));
    }

    /** The router's decision from its logits, per token; {@code forced} (or null): the experts to weigh instead. */
    static Routing route(double[] logits, int T, Setup s, int[] forced) {
        MoeSpec spec = s.spec();
        int E = spec.numExperts, k = spec.topK;
        int[] ids = new int[T * k];
        double[] weights = new double[T * k];
        boolean renorm = s.fixes().renormalize(spec);
        double scale = s.fixes().routedScaling(spec);
        for (int t = 0; t < T; t++) {
            double[] row = new double[E];
            System.arraycopy(logits, t * E, row, 0, E);
            double[] wk;
            int[] top;
            if (spec.router == modeldiff.model.Family.Router.SIGMOID_GROUPED) {
                double[] score = new double[E], choice = new double[E];
                for (int e = 0; e < E; e++) {
                    score[e] = 1 / (1 + Math.exp(-row[e]));
                    choice[e] = score[e] + (s.correctionBias() == null ? 0 : s.correctionBias()[e]);
                }
                top = forced == null ? topK(groupLimited(choice, spec.nGroup, spec.topkGroup), k)
                        : java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
                wk = pick(s.fixes().moeBiasInWeights ? choice : score, top);
            } else if (spec.router == modeldiff.model.Family.Router.SIGMOID_TOPK) {   // Llama 4: sigmoid of the chosen logits
                top = forced == null ? topK(row, k) : java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
                wk = pick(row, top);
                for (int j = 0; j < k; j++) wk[j] = 1 / (1 + Math.exp(-wk[j]));
            } else {
                top = forced == null ? topK(row, k) : java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
                wk = switch (spec.router) {                               // the k largest logits = the k largest probs
                    case TOPK_SOFTMAX -> s.fixes().moeSoftmaxBeforeTopk ? pick(softmax(row), top) : softmax(pick(row, top));
                    default -> pick(softmax(row), top);
                };
            }
            if (renorm) {
                double sum = 0;
                for (double v : wk) sum += v;
                if (spec.router == modeldiff.model.Family.Router.SIGMOID_GROUPED) sum += 1e-20;   // HF's denominator
                for (int j = 0; j < k; j++) wk[j] /= sum;
            }
            for (int j = 0; j < k; j++) {
                ids[t * k + j] = top[j];
                weights[t * k + j] = wk[j] * scale;
            }
        }
        return new Routing(logits, ids, weights);
    }

    /**
     * DeepSeek-V3 / GLM group-limited choice: each group of E/nGroup experts scores the sum of its two best choice
     * values; experts outside the topkGroup best groups are masked to −∞.
     */
    static double[] groupLimited(double[] choice, int nGroup, int topkGroup) {
        if (nGroup <= 1) return choice;
        int per = choice.length / nGroup;
        double[] groupScore = new double[nGroup];
        for (int g = 0; g < nGroup; g++) {
            double[] in = java.util.Arrays.copyOfRange(choice, g * per, (g + 1) * per);
            int[] best = topK(in, Math.min(2, per));
            for (int b : best) groupScore[g] += in[b];
        }
        boolean[] keep = new boolean[nGroup];
        for (int g : topK(groupScore, topkGroup)) keep[g] = true;
        double[] out = choice.clone();
        for (int e = 0; e < out.length; e++) if (!keep[e / per]) out[e] = Double.NEGATIVE_INFINITY;
        return out;
    }

    /** A teacher's expert ids (float values) as ints, each checked to name an expert. */
    static int[] ids(double[] values, int numExperts, String prefix) {
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            double v = values[i];
            if (v != Math.rint(v) || v < 0 || v >= numExperts)
                throw new BadInputException("teacher's " + prefix + "experts holds " + v + ", not an expert id in [0, " + numExperts + ")");
            out[i] = (int) v;
        }
        return out;
    }

    /** Σ over the chosen experts of weight · down(act(gate(x)) · up(x)), for each token: [T, H]. */
    static double[] experts(double[] m, int T, int H, MoeWeights w, Routing r, Setup s) {
        int k = s.spec().topK;
        double[] out = new double[T * H];
        for (int e = 0; e < w.count(); e++) {
            int n = 0;
            for (int i = 0; i < T * k; i++) if (r.experts()[i] == e) n++;
            if (n == 0) continue;
            int[] slot = new int[n];                                     // which (token, j) pairs chose e
            double[] x = new double[n * H];
            for (int i = 0, c = 0; i < T * k; i++) {
                if (r.experts()[i] != e) continue;
                slot[c] = i;
                System.arraycopy(m, (i / k) * H, x, c * H, H);
                c++;
            }
            boolean scaleIn = s.spec().scalesInput();    // Llama 4: expert(weight · x), not weight · expert(x)
            if (scaleIn)
                for (int c = 0; c < n; c++)
                    for (int j = 0; j < H; j++) x[c * H + j] *= r.weights()[slot[c]];
            double[] y = w.fused() == null ? expert(x, n, w.experts().get(e), s)
                    : w.fused().interleaved() ? gptOssExpert(x, n, w.fused(), e, s) : halvesExpert(x, n, w.fused(), e, s);
            for (int c = 0; c < n; c++) {
                int t = slot[c] / k;
                double wt = scaleIn ? 1 : r.weights()[slot[c]];
                for (int j = 0; j < H; j++) out[t * H + j] += wt * y[c * H + j];
            }
        }
        if (w.shared() != null) {                                        // every token also runs the shared expert
            double[] y = expert(m, T, w.shared(), s);
            for (int i = 0; i < out.length; i++) out[i] += y[i];
        }
        return out;
    }

    private static double[] expert(double[] x, int rows, MoeWeights.Expert ex, Setup s) {
        double[] g = ReferencePass.linear(x, rows, ex.gate(), s.par());
        double[] u = ReferencePass.linear(x, rows, ex.up(), s.par());
        for (int j = 0; j < g.length; j++) g[j] = s.activation().apply(g[j]) * u[j];
        return ReferencePass.linear(g, rows, ex.down(), s.par());
    }

    /** gpt-oss's SwiGLU constants: HF 5.17 sets them in GptOssExperts.__init__ (it does not read swiglu_limit). */
    static final double GPT_OSS_ALPHA = 1.702, GPT_OSS_LIMIT = 7.0;

    /**
     * gpt-oss's expert: gate_up = x·W[e] + b (gate in even columns, up in odd), gate clamped above and up on both
     * sides at the limit (not with mlp.no_clamp), (up + 1) · gate · σ(α·gate), then ·D[e] + b.
     */
    private static double[] gptOssExpert(double[] x, int rows, MoeWeights.Fused f, int e, Setup s) {
        int H = f.hidden(), ff = f.ff();
        double[] gu = affine(x, rows, H, f.block(f.gateUp(), e, H, 2 * ff), f.block(f.gateUpBias(), e, 1, 2 * ff), 2 * ff);
        double[] h = new double[rows * ff];
        boolean clamp = !s.fixes().mlpNoClamp;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < ff; j++) {
                double gate = gu[r * 2 * ff + 2 * j], up = gu[r * 2 * ff + 2 * j + 1];
                if (clamp) {
                    gate = Math.min(gate, GPT_OSS_LIMIT);
                    up = Math.max(-GPT_OSS_LIMIT, Math.min(up, GPT_OSS_LIMIT));
                }
                double glu = gate / (1 + Math.exp(-gate * GPT_OSS_ALPHA));
                h[r * ff + j] = (up + 1) * glu;
            }
        return affine(h, rows, ff, f.block(f.down(), e, ff, H), f.block(f.downBias(), e, 1, H), H);
    }

    /** Llama 4's fused expert: gate_up = x·W[e], gate its first ff columns, up the last; act(gate) · up, then ·D[e]. */
    private static double[] halvesExpert(double[] x, int rows, MoeWeights.Fused f, int e, Setup s) {
        int H = f.hidden(), ff = f.ff();
        double[] gu = affine(x, rows, H, f.block(f.gateUp(), e, H, 2 * ff), new double[2 * ff], 2 * ff);
        double[] h = new double[rows * ff];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < ff; j++)
                h[r * ff + j] = s.activation().apply(gu[r * 2 * ff + j]) * gu[r * 2 * ff + ff + j];
        return affine(h, rows, ff, f.block(f.down(), e, ff, H), new double[H], H);
    }

    /** x [rows, in] · W [in, out] + b. */
    private static double[] affine(double[] x, int rows, int in, double[] w, double[] b, int out) {
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc = Math.fma(x[r * in + i], w[i * out + o], acc);
                y[r * out + o] = acc + b[o];
            }
        return y;
    }

    /** Indices of the k largest values, largest first; equal values in index order (as torch.topk returns them). */
    static int[] topK(double[] v, int k) {
        int[] out = new int[k];
        boolean[] taken = new boolean[v.length];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < v.length; e++)
                if (!taken[e] && (best < 0 || v[e] > v[best])) best = e;
            taken[best] = true;
            out[j] = best;
        }
        return out;
    }

    private static double[] softmax(double[] v) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : v) max = Math.max(max, x);
        double sum = 0;
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Math.exp(v[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < v.length; i++) out[i] /= sum;
        return out;
    }

    private static double[] pick(double[] v, int[] idx) {
        double[] out = new double[idx.length];
        for (int j = 0; j < idx.length; j++) out[j] = v[idx[j]];
        return out;
    }
}
