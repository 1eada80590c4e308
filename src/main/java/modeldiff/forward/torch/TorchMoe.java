package modeldiff.forward.torch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
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
 * A MoE layer through libtorch (Mixtral, Qwen3-MoE, OLMoE: softmax routers; gpt-oss: top-k→softmax and its clamped
 * experts; GLM-4.5 / DeepSeek-V3: fp32 sigmoid router, groups, shared expert; Llama 4: top-k→sigmoid scaling the
 * experts' input, fused experts, shared expert): router logits, the fp32 softmax / sigmoid and every
 * expert's MLP are torch ops in the pass's dtype; the top-k choice over a [tokens, experts] table and HF's
 * index_add_ accumulation (one rounding to the dtype per added expert, experts in ascending id) are done here in Java,
 * as small bookkeeping around the kernels.
 */
final class TorchMoe {
    private TorchMoe() {
    }

    interface Linear {
        NDArray apply(NDArray x, LinearRef ref);
    }

    interface Put {
        NDArray apply(String probe, int width, NDArray own);
    }

    /** The pass's own ops: its linear, activation, float64 → dtype conversion, dtype and precision. */
    record Ops(Linear linear, UnaryOperator<NDArray> activation, UnaryOperator<NDArray> toDtype, DataType dtype,
               Precision precision, MoeSpec spec, Fixes fixes) {
    }

    static NDArray run(NDManager m, NDArray mn, int T, int H, MoeWeights w, Ops ops, Recorder rec, String prefix, Put put) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK;
        boolean sigmoid = s.router == Family.Router.SIGMOID_GROUPED;
        NDArray logits;                                                                                  // [T, E]
        if (sigmoid) {
            // F.linear(h.float(), W.float()): logits in fp32 (and recorded / forced as such)
            NDArray wf = m.create(w.router().loadWeightFloats(), new Shape(E, H));
            logits = put.apply(prefix + "router_logits", E, mn.toType(DataType.FLOAT32, false).matMul(wf.transpose()));
        } else {
            logits = put.apply(prefix + "router_logits", E, ops.linear().apply(mn, w.router()));
        }
        // softmax routers: fp32 probabilities; sigmoid routers: fp32 scores σ(logits); top-k→softmax: the logits
        boolean topkFirst = s.router == Family.Router.TOPK_SOFTMAX;
        boolean topkSigmoid = s.router == Family.Router.SIGMOID_TOPK;    // Llama 4: top-k of the logits, then σ
        double[] probs = doubles(sigmoid ? logits.toType(DataType.FLOAT32, false).getNDArrayInternal().sigmoid()
                : topkFirst || topkSigmoid ? logits : logits.toType(DataType.FLOAT32, false).softmax(-1));
        float[] bias = w.correctionBias() == null ? null : modeldiff.model.TensorStore.readFloats(w.correctionBias(), 0, E);
        int[] ids = new int[T * k];
        for (int t = 0; t < T; t++) {
            int[] top = sigmoid ? groupedTopK(probs, t * E, bias, s) : topK(probs, t * E, E, k);
            System.arraycopy(top, 0, ids, t * k, k);
        }
        double[] mine = new double[ids.length];
        for (int i = 0; i < ids.length; i++) mine[i] = ids[i];
        double[] chosen = rec.put(prefix + "experts", k, mine);
        for (int i = 0; i < ids.length; i++) {
            if (chosen[i] != Math.rint(chosen[i]) || chosen[i] < 0 || chosen[i] >= E)
                throw new BadInputException("teacher's " + prefix + "experts holds " + chosen[i] + ", not an expert id in [0, " + E + ")");
            ids[i] = (int) chosen[i];
        }
        float[] weights = topkFirst ? topkSoftmaxWeights(logits, probs, ids, T, ops)
                : topkSigmoid ? topkSigmoidWeights(m, probs, ids, T, ops)
                : weights(sigmoid && ops.fixes().moeBiasInWeights ? biased(probs, bias, T, E) : probs, ids, T, ops, sigmoid);
        double[] x = doubles(mn);
        float[] acc = new float[T * H];
        for (int e = 0; e < w.count(); e++) {
            int n = 0;
            for (int id : ids) if (id == e) n++;
            if (n == 0) continue;
            int[] slot = new int[n];
            double[] rows = new double[n * H];
            float[] wt = new float[n];
            for (int i = 0, c = 0; i < T * k; i++) {
                if (ids[i] != e) continue;
                slot[c] = i;
                System.arraycopy(x, (i / k) * H, rows, c * H, H);
                wt[c++] = weights[i];
            }
            NDArray xe = ops.toDtype().apply(m.create(rows, new Shape(n, H)));
            NDArray wc = m.create(wt, new Shape(n, 1));                                                  // fp32
            if (s.scalesInput()) {
                // Llama 4: routed_in = hidden * score in the dtype; the experts' outputs summed over dim 0 (fp32
                // accumulation, one rounding below); no weighting of the output
                NDArray y = halvesExpert(m, xe.mul(wc.toType(ops.dtype(), false)), w.fused(), e, ops);
                double[] yd = doubles(y);
                for (int c = 0; c < n; c++)
                    for (int j = 0; j < H; j++) acc[(slot[c] / k) * H + j] += (float) yd[c * H + j];
                continue;
            }
            NDArray y;                                                                                   // [n, H]
            if (w.fused() != null) {
                y = gptOssExpert(m, xe, w.fused(), e, ops);
            } else {
                MoeWeights.Expert ex = w.experts().get(e);
                NDArray h = ops.activation().apply(ops.linear().apply(xe, ex.gate())).mul(ops.linear().apply(xe, ex.up()));
                y = ops.linear().apply(h, ex.down());
            }
            // Qwen3-MoE / OLMoE hand the experts dtype weights (dtype × dtype); Mixtral fp32 ones (a product in fp32)
            NDArray contrib = s.weightsInDtype ? y.mul(wc.toType(ops.dtype(), false))
                    : y.toType(DataType.FLOAT32, false).mul(wc).toType(ops.dtype(), false);
            double[] cd = doubles(contrib);
            for (int c = 0; c < n; c++) {
                int t = slot[c] / k;
                for (int j = 0; j < H; j++)                                                              // index_add_ in the dtype
                    acc[t * H + j] = (float) ops.precision().round((double) (acc[t * H + j] + (float) cd[c * H + j]));
            }
        }
        double[] out = new double[acc.length];
        for (int i = 0; i < out.length; i++) out[i] = acc[i];
        NDArray routed = ops.toDtype().apply(m.create(out, new Shape(T, H)));
        if (w.shared() == null) return routed;
        MoeWeights.Expert sh = w.shared();                                  // + shared_experts(residuals), in the dtype
        NDArray hs = ops.activation().apply(ops.linear().apply(mn, sh.gate())).mul(ops.linear().apply(mn, sh.up()));
        return routed.add(ops.linear().apply(hs, sh.down()));
    }

    /**
     * gpt-oss: weights = softmax over the k chosen logits, computed in fp32 and rounded to the dtype (softmax with
     * dtype= the dtype); moe.softmax_before_topk takes them from the softmax over all experts instead.
     */
    private static float[] topkSoftmaxWeights(NDArray logits, double[] lg, int[] ids, int T, Ops ops) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK;
        double[] all = ops.fixes().moeSoftmaxBeforeTopk ? doubles(logits.toType(DataType.FLOAT32, false).softmax(-1)) : null;
        float[] out = new float[ids.length];
        for (int t = 0; t < T; t++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < k; j++) max = Math.max(max, lg[t * E + ids[t * k + j]]);
            float[] e = new float[k];
            for (int j = 0; j < k; j++) {
                e[j] = (float) Math.exp((float) (lg[t * E + ids[t * k + j]] - max));
                sum += e[j];
            }
            for (int j = 0; j < k; j++) {
                float v = all != null ? (float) all[t * E + ids[t * k + j]] : e[j] / (float) sum;
                float scale = (float) ops.fixes().routedScaling(s);
                out[t * k + j] = (float) ops.precision().round((double) (scale == 1f ? v : v * scale));
            }
        }
        return out;
    }

    /**
     * Llama4Router's weights: σ(score.float()).to(dtype) of each chosen logit (a torch sigmoid in fp32, one cast);
     * moe.renormalize=true divides by their fp32 sum over the k and moe.routed_scaling multiplies, each rounded.
     */
    private static float[] topkSigmoidWeights(NDManager m, double[] logits, int[] ids, int T, Ops ops) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK;
        float[] chosen = new float[ids.length];
        for (int i = 0; i < ids.length; i++) chosen[i] = (float) logits[(i / k) * E + ids[i]];
        NDArray sg = m.create(chosen, new Shape(T, k)).getNDArrayInternal().sigmoid();
        double[] sd = doubles(sg.toType(ops.dtype(), false));
        boolean renorm = ops.fixes().renormalize(s);
        float scale = (float) ops.fixes().routedScaling(s);
        float[] out = new float[ids.length];
        for (int t = 0; t < T; t++) {
            float sum = 0;
            for (int j = 0; j < k; j++) sum += (float) sd[t * k + j];
            for (int j = 0; j < k; j++) {
                float v = (float) sd[t * k + j];
                if (renorm) v = (float) ops.precision().round((double) (v / sum));
                if (scale != 1f) v = (float) ops.precision().round((double) (v * scale));
                out[t * k + j] = v;
            }
        }
        return out;
    }

    /**
     * Llama4TextExperts as torch ops: gate_up = x @ W[e] [n, 2·ff], gate its first ff columns and up its last,
     * up · act(gate), @ D[e]; no biases.
     */
    private static NDArray halvesExpert(NDManager m, NDArray x, MoeWeights.Fused f, int e, Ops ops) {
        int H = f.hidden(), ff = f.ff();
        NDArray gu = x.matMul(param(m, f.block(f.gateUp(), e, H, 2 * ff), H, 2 * ff, ops));
        NDArray gate = gu.get(new ai.djl.ndarray.index.NDIndex(":, 0:" + ff));
        NDArray up = gu.get(new ai.djl.ndarray.index.NDIndex(":, " + ff + ":"));
        return up.mul(ops.activation().apply(gate)).matMul(param(m, f.block(f.down(), e, ff, H), ff, H, ops));
    }

    /**
     * gpt-oss's expert as torch ops: {@code x @ W[e] + b}, gate/up from even/odd columns, gate clamped above and up on
     * both sides at 7 (not with mlp.no_clamp), {@code (up + 1) * gate * sigmoid(gate * 1.702)}, {@code @ D[e] + b}.
     */
    private static NDArray gptOssExpert(NDManager m, NDArray x, MoeWeights.Fused f, int e, Ops ops) {
        int H = f.hidden(), ff = f.ff();
        NDArray gu = x.matMul(param(m, f.block(f.gateUp(), e, H, 2 * ff), H, 2 * ff, ops))
                .add(param(m, f.block(f.gateUpBias(), e, 1, 2 * ff), 1, 2 * ff, ops));
        NDArray gate = gu.get(new ai.djl.ndarray.index.NDIndex(":, 0::2"));
        NDArray up = gu.get(new ai.djl.ndarray.index.NDIndex(":, 1::2"));
        if (!ops.fixes().mlpNoClamp) {
            gate = gate.minimum(7.0f);
            up = up.clip(-7.0f, 7.0f);
        }
        NDArray glu = gate.mul(gate.mul(1.702f).getNDArrayInternal().sigmoid());
        NDArray h = up.add(1).mul(glu);
        return h.matMul(param(m, f.block(f.down(), e, ff, H), ff, H, ops)).add(param(m, f.block(f.downBias(), e, 1, H), 1, H, ops));
    }

    /** Stored values (float64-widened) as a [rows, cols] tensor in the dtype. */
    private static NDArray param(NDManager m, double[] v, int rows, int cols, Ops ops) {
        return ops.toDtype().apply(m.create(v, new Shape(rows, cols)));
    }

    /** σ + correction bias, in fp32 (moe.bias_in_weights takes the weights from these). */
    private static double[] biased(double[] scores, float[] bias, int T, int E) {
        double[] out = scores.clone();
        if (bias != null) for (int i = 0; i < out.length; i++) out[i] = (float) ((float) scores[i] + bias[i % E]);
        return out;
    }

    /**
     * DeepSeek / GLM choice: fp32 σ + bias, groups scored by the sum of their two best, the topk_group best groups
     * kept, top-k among their experts.
     */
    private static int[] groupedTopK(double[] scores, int off, float[] bias, MoeSpec s) {
        int E = s.numExperts, per = E / s.nGroup;
        double[] choice = new double[E];
        for (int e = 0; e < E; e++) choice[e] = (float) ((float) scores[off + e] + (bias == null ? 0f : bias[e]));
        if (s.nGroup > 1) {
            double[] group = new double[s.nGroup];
            for (int g = 0; g < s.nGroup; g++) {
                int[] best = topK(choice, g * per, per, Math.min(2, per));
                group[g] = (float) ((float) choice[g * per + best[0]] + (best.length > 1 ? (float) choice[g * per + best[1]] : 0f));
            }
            boolean[] keep = new boolean[s.nGroup];
            for (int g : topK(group, 0, s.nGroup, s.topkGroup)) keep[g] = true;
            for (int e = 0; e < E; e++) if (!keep[e / per]) choice[e] = Double.NEGATIVE_INFINITY;
        }
        return topK(choice, 0, E, s.topK);
    }

    /** The chosen experts' fp32 probabilities, renormalised in fp32 if so configured, scaled, rounded where HF casts. */
    private static float[] weights(double[] probs, int[] ids, int T, Ops ops, boolean sigmoid) {
        MoeSpec s = ops.spec();
        int E = s.numExperts, k = s.topK;
        boolean renorm = ops.fixes().renormalize(s);
        float scale = (float) ops.fixes().routedScaling(s);
        float[] out = new float[ids.length];
        for (int t = 0; t < T; t++) {
            float sum = 0;
            for (int j = 0; j < k; j++) sum += (float) probs[t * E + ids[t * k + j]];
            if (sigmoid) sum += 1e-20f;                                     // HF's denominator
            for (int j = 0; j < k; j++) {
                float v = (float) probs[t * E + ids[t * k + j]];
                if (renorm) v = v / sum;
                if (scale != 1f) v = v * scale;
                out[t * k + j] = s.weightsInDtype ? (float) ops.precision().round((double) v) : v;
            }
        }
        return out;
    }

    /** The k largest of one row, largest first; ties to the lower index. */
    private static int[] topK(double[] v, int off, int n, int k) {
        int[] out = new int[k];
        boolean[] taken = new boolean[n];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n; e++) if (!taken[e] && (best < 0 || v[off + e] > v[off + best])) best = e;
            taken[best] = true;
            out[j] = best;
        }
        return out;
    }

    private static double[] doubles(NDArray x) {
        try (NDArray d = x.toType(DataType.FLOAT64, true)) {
            return d.toDoubleArray();
        }
    }
}
