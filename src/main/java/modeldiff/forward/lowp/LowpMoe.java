package modeldiff.forward.lowp;

import modeldiff.forward.Fixes;
import modeldiff.forward.Recorder;
import modeldiff.model.BadInputException;
import modeldiff.model.Family;
import modeldiff.model.LinearRef;
import modeldiff.model.MoeSpec;
import modeldiff.model.MoeWeights;
import modeldiff.numeric.Precision;

import java.util.function.UnaryOperator;

/**
 * A mixture-of-experts MLP as HF transformers 5.17's eager experts path computes it in a reduced dtype (MoE rounding
 * points in docs/precision.md):
 * <ol>
 * <li>router logits: a linear in the dtype (ROUTER_LOGITS);</li>
 * <li>softmax over all experts in float32 ({@code softmax(logits.float())}), top-k, renormalisation in float32;</li>
 * <li>the k weights rounded to the dtype where the family casts them (Qwen3-MoE, OLMoE:
 *     {@code router_top_value.to(router_logits.dtype)}), else kept in float32 (Mixtral) (ROUTING_WEIGHTS);</li>
 * <li>each expert, in ascending expert id, computes its gated MLP on the tokens that chose it, each op rounded as in
 *     the dense MLP; its output times the token's weight is rounded once to the dtype (EXPERT_WEIGHTED) and added
 *     into the token's running sum by {@code index_add_} in the dtype, one rounding per add (EXPERT_SUM).</li>
 * </ol>
 * Written apart from the float64 {@code ReferenceMoe}: they share the model description, not the arithmetic.
 */
final class LowpMoe {
    private LowpMoe() {
    }

    /** The lowp pass's own operations (each rounds as that pass does). */
    record Ops(Linear linear, UnaryOperator<float[]> activation, ToDtype toDtype, MoeSpec spec, Fixes fixes, float[] correctionBias) {
        Ops(Linear linear, UnaryOperator<float[]> activation, ToDtype toDtype, MoeSpec spec, Fixes fixes) {
            this(linear, activation, toDtype, spec, fixes, null);
        }

        Ops withBias(float[] bias) {
            return new Ops(linear, activation, toDtype, spec, fixes, bias);
        }
    }

    /** x·Wᵀ in float32 from float32 copies of both (exact products summed, one fp32 rounding), no dtype rounding. */
    private static float[] fp32Linear(float[] x, int rows, LinearRef ref) {
        float[] w = ref.loadWeightFloats();
        int in = ref.in(), out = ref.out();
        float[] y = new float[rows * out];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double) x[r * in + i] * w[o * in + i];
                y[r * out + o] = (float) acc;
            }
        return y;
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    interface Linear {
        float[] apply(float[] x, int rows, LinearRef ref);
    }

    /** One PyTorch op's fp32 result rounded to the pass's dtype (LowpPass::toDtype). */
    interface ToDtype {
        float apply(float v);
    }

    /** Logits [T, E] (in the dtype), chosen ids [T, k], weights [T, k] as the experts receive them. */
    record Routing(float[] logits, int[] experts, float[] weights) {
    }

    /**
     * Router logits, then the choice, each recorded; in a teacher-forced run the pass continues with the teacher's
     * logits (rounded to the dtype) and, where the teacher recorded them, its chosen experts.
     */
    static Routing route(Recorder rec, String prefix, Precision p, float[] m, int T, MoeWeights w, Ops ops) {
        MoeSpec s = ops.spec();
        float[] logits;
        if (s.router == Family.Router.SIGMOID_GROUPED) {
            // DeepSeek / GLM: F.linear(h.float(), W.float()), logits kept in float32 (and forced as such)
            float[] fp32 = p == Precision.FP32 ? ops.linear().apply(m, T, w.router()) : fp32Linear(m, T, w.router());
            double[] own = rec.put(prefix + "router_logits", s.numExperts, widen(fp32));
            logits = new float[own.length];
            for (int j = 0; j < own.length; j++) logits[j] = (float) own[j];
            ops = ops.withBias(w.correctionBias() == null ? null
                    : modeldiff.model.TensorStore.readFloats(w.correctionBias(), 0, s.numExperts));
        } else {
            logits = rec.put(prefix + "router_logits", s.numExperts, ops.linear().apply(m, T, w.router()), p); // ROUTER_LOGITS
        }
        Routing own = route(logits, T, ops, null);
        double[] mine = new double[own.experts().length];
        for (int j = 0; j < mine.length; j++) mine[j] = own.experts()[j];
        double[] chosen = rec.put(prefix + "experts", s.topK, mine);
        if (chosen == mine) return own;
        int[] forced = new int[chosen.length];
        for (int j = 0; j < chosen.length; j++) {
            if (chosen[j] != Math.rint(chosen[j]) || chosen[j] < 0 || chosen[j] >= s.numExperts)
                throw new BadInputException("teacher's " + prefix + "experts holds " + chosen[j] + ", not an expert id in [0, " + s.numExperts + ")");
            forced[j] = (int) chosen[j];
        }
        return route(logits, T, ops, forced);
    }

    /** The router's decision from logits in the dtype; {@code forced} (or null): the experts to weigh instead. */
    static Routing route(float[] logits, int T, Ops ops, int[] forced) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK;
        int[] ids = new int[T * k];
        float[] weights = new float[T * k];
        boolean renorm = ops.fixes().renormalize(s);
        float scale = (float) ops.fixes().routedScaling(s);
        for (int t = 0; t < T; t++) {
            if (s.router == Family.Router.SIGMOID_GROUPED) {
                sigmoidRoute(logits, t, ops, forced, ids, weights);
                continue;
            }
            if (s.router == Family.Router.SIGMOID_TOPK) {
                // Llama4Router: topk of the logits in the dtype, sigmoid(scores.float()).to(dtype)  (ROUTING_WEIGHTS)
                float[] row = java.util.Arrays.copyOfRange(logits, t * E, t * E + E);
                int[] top = forced == null ? topK(row, k) : java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
                float[] wk = new float[k];
                for (int j = 0; j < k; j++) wk[j] = ops.toDtype().apply((float) (1 / (1 + Math.exp(-row[top[j]]))));
                if (renorm) {                                   // moe.renormalize=true: over the k, in fp32
                    float sum = 0;
                    for (float v : wk) sum += v;
                    for (int j = 0; j < k; j++) wk[j] = ops.toDtype().apply(wk[j] / sum);
                }
                for (int j = 0; j < k; j++) {
                    ids[t * k + j] = top[j];
                    weights[t * k + j] = scale == 1f ? wk[j] : ops.toDtype().apply(wk[j] * scale);
                }
                continue;
            }
            float[] probs = softmaxFp32(logits, t * E, E);
            int[] top = forced == null ? topK(probs, k) : java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
            float[] wk = new float[k];
            switch (s.router) {
                case SOFTMAX_TOPK -> {
                    for (int j = 0; j < k; j++) wk[j] = probs[top[j]];
                }
                case TOPK_SOFTMAX -> {
                    if (ops.fixes().moeSoftmaxBeforeTopk) {
                        for (int j = 0; j < k; j++) wk[j] = probs[top[j]];
                    } else {
                        float[] sel = new float[k];
                        for (int j = 0; j < k; j++) sel[j] = logits[t * E + top[j]];
                        wk = softmaxFp32(sel, 0, k);
                    }
                }
                case SIGMOID_GROUPED, SIGMOID_TOPK -> throw new IllegalStateException("sigmoid routers are routed above");
            }
            if (renorm) {
                float sum = 0;
                for (float v : wk) sum += v;                                        // fp32 sum over k
                for (int j = 0; j < k; j++) wk[j] = wk[j] / sum;
            }
            for (int j = 0; j < k; j++) {
                float v = scale == 1f ? wk[j] : wk[j] * scale;
                ids[t * k + j] = top[j];
                weights[t * k + j] = s.weightsInDtype ? ops.toDtype().apply(v) : v;  // ROUTING_WEIGHTS
            }
        }
        return new Routing(logits, ids, weights);
    }

    /**
     * Glm4MoeTopkRouter / DeepseekV3TopkRouter in float32: sigmoid scores, + correction bias for choosing, the
     * topk_group groups with the best sum of their top two, top-k among those, weights gathered from the scores,
     * divided by (their sum + 1e-20), times routed_scaling_factor; kept in float32.
     */
    private static void sigmoidRoute(float[] logits, int t, Ops ops, int[] forced, int[] ids, float[] weights) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK, per = E / s.nGroup;
        float[] score = new float[E], choice = new float[E];
        for (int e = 0; e < E; e++) {
            score[e] = (float) (1 / (1 + Math.exp(-logits[t * E + e])));
            choice[e] = score[e] + (ops.correctionBias() == null ? 0f : ops.correctionBias()[e]);
        }
        int[] top;
        if (forced != null) {
            top = java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
        } else {
            float[] masked = choice.clone();
            if (s.nGroup > 1) {
                float[] group = new float[s.nGroup];
                for (int g = 0; g < s.nGroup; g++) {
                    float[] in = java.util.Arrays.copyOfRange(choice, g * per, (g + 1) * per);
                    int[] best = topK(in, Math.min(2, per));
                    for (int b : best) group[g] += in[b];
                }
                boolean[] keep = new boolean[s.nGroup];
                for (int g : topK(group, s.topkGroup)) keep[g] = true;
                for (int e = 0; e < E; e++) if (!keep[e / per]) masked[e] = Float.NEGATIVE_INFINITY;
            }
            top = topK(masked, k);
        }
        float[] from = ops.fixes().moeBiasInWeights ? choice : score;
        float[] wk = new float[k];
        for (int j = 0; j < k; j++) wk[j] = from[top[j]];
        if (ops.fixes().renormalize(s)) {
            float sum = 0;
            for (float v : wk) sum += v;
            sum += 1e-20f;
            for (int j = 0; j < k; j++) wk[j] = wk[j] / sum;
        }
        float scale = (float) ops.fixes().routedScaling(s);
        for (int j = 0; j < k; j++) {
            ids[t * k + j] = top[j];
            weights[t * k + j] = wk[j] * scale;                      // float32 (HF keeps them so)
        }
    }

    /** The experts' weighted sum [T, H], accumulated in the dtype expert by expert (HF's index_add_ loop). */
    static float[] experts(float[] m, int T, int H, MoeWeights w, Routing r, Ops ops) {
        int k = ops.spec().topK;
        float[] out = new float[T * H];
        float[] routedSum = null;
        for (int e = 0; e < w.count(); e++) {
            int n = 0;
            for (int i = 0; i < T * k; i++) if (r.experts()[i] == e) n++;
            if (n == 0) continue;
            // HF visits the tokens of one expert in token order (torch.where over the [k, T] mask, row-major); each
            // token chooses an expert at most once, so the order of rows does not change any sum.
            int[] slot = new int[n];
            float[] x = new float[n * H];
            for (int t = 0, c = 0; t < T; t++)
                for (int j = 0; j < k; j++) {
                    if (r.experts()[t * k + j] != e) continue;
                    slot[c] = t * k + j;
                    System.arraycopy(m, t * H, x, c * H, H);
                    c++;
                }
            boolean scaleIn = ops.spec().scalesInput();   // Llama 4: routed_in = hidden * score, rounded (EXPERT_INPUT)
            if (scaleIn)
                for (int c = 0; c < n; c++)
                    for (int j = 0; j < H; j++) x[c * H + j] = ops.toDtype().apply(x[c * H + j] * r.weights()[slot[c]]);
            float[] y;
            if (w.fused() != null && !w.fused().interleaved()) {
                y = halvesExpert(x, n, w.fused(), e, ops);
            } else if (w.fused() != null) {
                y = gptOssExpert(x, n, w.fused(), e, ops);
            } else {
                MoeWeights.Expert ex = w.experts().get(e);
                float[] g = ops.activation().apply(ops.linear().apply(x, n, ex.gate()));
                float[] u = ops.linear().apply(x, n, ex.up());
                for (int j = 0; j < g.length; j++) g[j] = ops.toDtype().apply(g[j] * u[j]);   // MLP_PRODUCT
                y = ops.linear().apply(g, n, ex.down());
            }
            if (scaleIn) {     // Llama 4: sum over experts (dim=0) in fp32, rounded once below
                if (routedSum == null) routedSum = new float[T * H];
                for (int c = 0; c < n; c++)
                    for (int j = 0; j < H; j++) routedSum[(slot[c] / k) * H + j] += y[c * H + j];
                continue;
            }
            for (int c = 0; c < n; c++) {
                int t = slot[c] / k;
                float wt = r.weights()[slot[c]];
                for (int j = 0; j < H; j++) {
                    float contrib = ops.toDtype().apply(y[c * H + j] * wt);           // EXPERT_WEIGHTED
                    out[t * H + j] = ops.toDtype().apply(out[t * H + j] + contrib);     // EXPERT_SUM
                }
            }
        }
        if (routedSum != null) for (int i = 0; i < out.length; i++) out[i] = ops.toDtype().apply(routedSum[i]);   // EXPERT_SUM
        if (w.shared() != null) {                                        // + shared_experts(residuals), one rounding
            MoeWeights.Expert ex = w.shared();
            float[] g = ops.activation().apply(ops.linear().apply(m, T, ex.gate()));
            float[] u = ops.linear().apply(m, T, ex.up());
            for (int j = 0; j < g.length; j++) g[j] = ops.toDtype().apply(g[j] * u[j]);
            float[] y = ops.linear().apply(g, T, ex.down());
            for (int i = 0; i < out.length; i++) out[i] = ops.toDtype().apply(out[i] + y[i]);
        }
        return out;
    }

    /**
     * gpt-oss's expert as GptOssExperts computes it: {@code x @ W[e] + b} (a matmul rounded, then the bias add rounded),
     * gate/up from even/odd columns, clamps (exact), {@code gate * sigmoid(gate * alpha)} and {@code (up + 1) * glu}
     * one op (one rounding) at a time, then {@code @ D[e] + b} likewise.
     */
    private static float[] gptOssExpert(float[] x, int n, MoeWeights.Fused f, int e, Ops ops) {
        int H = f.hidden(), ff = f.ff();
        ToDtype toDtype = ops.toDtype();
        float[] gu = affine(x, n, H, f.block(f.gateUp(), e, H, 2 * ff), f.block(f.gateUpBias(), e, 1, 2 * ff), 2 * ff, toDtype);
        boolean clamp = !ops.fixes().mlpNoClamp;
        float limit = 7.0f, alpha = 1.702f;                        // HF 5.17's constants (GptOssExperts.__init__)
        float[] h = new float[n * ff];
        for (int row = 0; row < n; row++)
            for (int j = 0; j < ff; j++) {
                float gate = gu[row * 2 * ff + 2 * j], up = gu[row * 2 * ff + 2 * j + 1];
                if (clamp) {
                    gate = Math.min(gate, limit);
                    up = Math.max(-limit, Math.min(up, limit));
                }
                float sg = toDtype.apply((float) (1 / (1 + Math.exp(-toDtype.apply(gate * alpha)))));
                float glu = toDtype.apply(gate * sg);
                h[row * ff + j] = toDtype.apply(toDtype.apply(up + 1f) * glu);
            }
        return affine(h, n, ff, f.block(f.down(), e, ff, H), f.block(f.downBias(), e, 1, H), H, toDtype);
    }

    /**
     * Llama4TextExperts: gate_up = bmm(x, W[e]) rounded, gate/up its first/last ff columns, act(gate) rounded,
     * up · act rounded, bmm with D[e] rounded.
     */
    private static float[] halvesExpert(float[] x, int n, MoeWeights.Fused f, int e, Ops ops) {
        int H = f.hidden(), ff = f.ff();
        float[] gu = affine(x, n, H, f.block(f.gateUp(), e, H, 2 * ff), new double[2 * ff], 2 * ff, ops.toDtype());
        float[] g = new float[n * ff], u = new float[n * ff];
        for (int row = 0; row < n; row++) {
            System.arraycopy(gu, row * 2 * ff, g, row * ff, ff);
            System.arraycopy(gu, row * 2 * ff + ff, u, row * ff, ff);
        }
        g = ops.activation().apply(g);
        for (int j = 0; j < g.length; j++) g[j] = ops.toDtype().apply(u[j] * g[j]);          // MLP_PRODUCT
        return affine(g, n, ff, f.block(f.down(), e, ff, H), new double[H], H, ops.toDtype());
    }

    /** R(R(x·W) + b) for x [rows, in], W [in, out]: the product summed exactly, rounded, then the bias add rounded. */
    private static float[] affine(float[] x, int rows, int in, double[] w, double[] b, int out, ToDtype toDtype) {
        float[] wr = new float[w.length];
        for (int i = 0; i < w.length; i++) wr[i] = toDtype.apply((float) w[i]);     // WEIGHT_LOAD
        float[] y = new float[rows * out];
        for (int row = 0; row < rows; row++)
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double) x[row * in + i] * wr[i * out + o];
                y[row * out + o] = toDtype.apply(toDtype.apply((float) acc) + toDtype.apply((float) b[o]));
            }
        return y;
    }

    /** torch.softmax in float32: exp(x − max) in fp32, their fp32 sum, one division each. */
    private static float[] softmaxFp32(float[] v, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, v[off + i]);
        float[] e = new float[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            e[i] = (float) Math.exp(v[off + i] - max);
            sum += e[i];
        }
        float total = (float) sum;
        for (int i = 0; i < n; i++) e[i] = e[i] / total;
        return e;
    }

    /**
     * Indices of the k largest, largest first, with exact ties as torch.topk on CUDA resolved them in HF's bf16 traces
     * (all three ties in the fixtures): of equal values at the cut the lower index is chosen (gpt_oss layer 1 token
     * 25), and equal values inside the chosen k are listed higher index first (qwen3_moe layer 2 token 7, gpt_oss
     * layer 0 token 23).
     */
    private static int[] topK(float[] v, int k) {
        int[] out = new int[k];
        boolean[] taken = new boolean[v.length];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < v.length; e++)
                if (!taken[e] && (best < 0 || v[e] > v[best])) best = e;
            taken[best] = true;
            out[j] = best;
        }
        for (int a = 1; a < k; a++)                                        // equal values: higher index first
            for (int b = a; b > 0 && v[out[b]] == v[out[b - 1]] && out[b] > out[b - 1]; b--) {
                int t = out[b];
                out[b] = out[b - 1];
                out[b - 1] = t;
            }
        return out;
    }
}
