package modeldiff.forward.cuda;

import modeldiff.numeric.Activation;

/**
 * Scalar Java definitions of what each MoE kernel (modeldiff_moe.cu) computes, the truth {@link MoeChecks} holds the
 * kernels to. The routing follows forward/lowp/LowpMoe's rules (torch.topk's tie order, fp32 softmax, where HF rounds
 * the weights) but is written apart from it; MoeReferenceTest compares the two on the CPU.
 */
public final class MoeReference {
    private MoeReference() {
    }

    static float r(float v, boolean bf) {
        return bf ? CudaRuntime.bf16Round(v) : v;
    }

    /** Chosen experts [T, k] and their weights [T, k]. */
    public record Routing(int[] ids, float[] weights) {
    }

    /**
     * Indices of the k largest of v[off, off + n), largest first: of equal values at the cut the lower index, equal
     * values inside the k listed higher index first.
     */
    public static int[] topK(float[] v, int off, int n, int k) {
        int[] out = new int[k];
        boolean[] taken = new boolean[n];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n; e++)
                if (!taken[e] && (best < 0 || v[off + e] > v[off + best])) best = e;
            if (best < 0) best = 0;
            taken[best] = true;
            out[j] = best;
        }
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && v[off + out[b]] == v[off + out[b - 1]] && out[b] > out[b - 1]; b--) {
                int t = out[b];
                out[b] = out[b - 1];
                out[b - 1] = t;
            }
        return out;
    }

    static float sigmoid(float x) {
        return (float) (1 / (1 + Math.exp(-x)));
    }

    /** softmax in float32: exp(x − max), fp32 sum in order, one division each. */
    static float[] softmax(float[] v, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, v[off + i]);
        float[] p = new float[n];
        float s = 0;
        for (int i = 0; i < n; i++) {
            p[i] = (float) Math.exp(v[off + i] - max);
            s += p[i];
        }
        for (int i = 0; i < n; i++) p[i] = p[i] / s;
        return p;
    }

    /** The routing kernel's result for logits [T, E]; forced (or null): the experts to weigh instead of choosing. */
    public static Routing route(float[] logits, float[] corrBias, MoeKernels.RouteArgs a, int[] forced) {
        int T = a.T(), E = a.experts(), k = a.topK();
        boolean bf = a.bf();
        int[] ids = new int[T * k];
        float[] weights = new float[T * k];
        for (int t = 0; t < T; t++) {
            int[] top;
            float[] wk = new float[k];
            if (a.router() == 2) {
                float[] score = new float[E], choice = new float[E];
                for (int e = 0; e < E; e++) {
                    score[e] = sigmoid(logits[t * E + e]);
                    choice[e] = score[e] + (corrBias == null ? 0f : corrBias[e]);
                }
                if (forced != null) top = java.util.Arrays.copyOfRange(forced, t * k, t * k + k);
                else {
                    float[] masked = choice.clone();
                    if (a.nGroup() > 1) {
                        int per = E / a.nGroup();
                        float[] group = new float[a.nGroup()];
                        for (int g = 0; g < a.nGroup(); g++)
                            for (int b : topK(choice, g * per, per, Math.min(2, per))) group[g] += choice[g * per + b];
                        boolean[] keep = new boolean[a.nGroup()];
                        for (int g : topK(group, 0, a.nGroup(), a.topkGroup())) keep[g] = true;
                        for (int e = 0; e < E; e++) if (!keep[e / per]) masked[e] = Float.NEGATIVE_INFINITY;
                    }
                    top = topK(masked, 0, E, k);
                }
                float[] from = a.biasInWeights() ? choice : score;
                for (int j = 0; j < k; j++) wk[j] = from[top[j]];
                if (a.renormalize()) {
                    float s = 0;
                    for (float v : wk) s += v;
                    s += 1e-20f;
                    for (int j = 0; j < k; j++) wk[j] = wk[j] / s;
                }
                for (int j = 0; j < k; j++) wk[j] = wk[j] * a.scale();
            } else if (a.router() == 3) {
                top = forced != null ? java.util.Arrays.copyOfRange(forced, t * k, t * k + k) : topK(logits, t * E, E, k);
                for (int j = 0; j < k; j++) wk[j] = r(sigmoid(logits[t * E + top[j]]), bf);
                if (a.renormalize()) {
                    float s = 0;
                    for (float v : wk) s += v;
                    for (int j = 0; j < k; j++) wk[j] = r(wk[j] / s, bf);
                }
                if (a.scale() != 1f) for (int j = 0; j < k; j++) wk[j] = r(wk[j] * a.scale(), bf);
            } else {
                float[] probs = softmax(logits, t * E, E);
                top = forced != null ? java.util.Arrays.copyOfRange(forced, t * k, t * k + k) : topK(probs, 0, E, k);
                if (a.router() == 1 && !a.softmaxBeforeTopk()) {
                    float[] sel = new float[k];
                    for (int j = 0; j < k; j++) sel[j] = logits[t * E + top[j]];
                    wk = softmax(sel, 0, k);
                } else {
                    for (int j = 0; j < k; j++) wk[j] = probs[top[j]];
                }
                if (a.renormalize()) {
                    float s = 0;
                    for (float v : wk) s += v;
                    for (int j = 0; j < k; j++) wk[j] = wk[j] / s;
                }
                for (int j = 0; j < k; j++) {
                    float v = a.scale() == 1f ? wk[j] : wk[j] * a.scale();
                    wk[j] = a.weightsInDtype() ? r(v, bf) : v;
                }
            }
            for (int j = 0; j < k; j++) {
                ids[t * k + j] = top[j];
                weights[t * k + j] = wk[j];
            }
        }
        return new Routing(ids, weights);
    }

    /** The counting sort: per expert its count and first row; each slot's row (experts in order, slots in order). */
    public record Grouping(int[] counts, int[] offsets, int[] rowOf, int[] slotOfRow) {
    }

    public static Grouping group(int[] ids, int E) {
        int n = ids.length;
        int[] counts = new int[E], offsets = new int[E + 1], rowOf = new int[n], slotOfRow = new int[n];
        for (int id : ids) counts[id]++;
        for (int e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
        int[] next = java.util.Arrays.copyOf(offsets, E);
        for (int i = 0; i < n; i++) {
            rowOf[i] = next[ids[i]]++;
            slotOfRow[rowOf[i]] = i;
        }
        return new Grouping(counts, offsets, rowOf, slotOfRow);
    }

    /** Grouped row r = the token of slot slotOfRow[r]; scaled (weights non-null): r(x · w). */
    public static float[] gather(float[] x, int[] slotOfRow, float[] weights, int n, int k, int H, boolean bf) {
        float[] out = new float[n * H];
        for (int row = 0; row < n; row++) {
            int s = slotOfRow[row];
            for (int j = 0; j < H; j++) {
                float v = x[(s / k) * H + j];
                out[row * H + j] = weights == null ? v : r(v * weights[s], bf);
            }
        }
        return out;
    }

    /** C [n, N] in float64: rows offsets[e]..offsets[e+1]) times W[e]ᵀ (+ b[e]). */
    public static double[] groupedGemm(float[] a, float[] w, float[] b, int[] offsets, int N, int K) {
        int E = offsets.length - 1, n = offsets[E];
        double[] c = new double[n * N];
        for (int e = 0; e < E; e++)
            for (int row = offsets[e]; row < offsets[e + 1]; row++)
                for (int o = 0; o < N; o++) {
                    double s = 0;
                    for (int i = 0; i < K; i++) s += (double) a[row * K + i] * w[(e * N + o) * K + i];
                    c[row * N + o] = s + (b == null ? 0 : b[e * N + o]);
                }
        return c;
    }

    /** The experts' activation in float64 from gu [rows, 2·ff] (gate | up): mode 0 act(g)·u, 1 gpt-oss clamped, 2 not. */
    public static double[] act(float[] gu, int rows, int ff, Activation kind, int mode, double alpha, double limit) {
        double[] out = new double[rows * ff];
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < ff; j++) {
                double g = gu[row * 2 * ff + j], u = gu[row * 2 * ff + ff + j];
                if (mode == 0) {
                    out[row * ff + j] = kind.apply(g) * u;
                    continue;
                }
                if (mode == 1) {
                    g = Math.min(g, limit);
                    u = Math.max(-limit, Math.min(u, limit));
                }
                out[row * ff + j] = (u + 1) * g / (1 + Math.exp(-g * alpha));
            }
        return out;
    }

    /**
     * Per token its experts' rows of y in ascending expert id: acc = r(acc + r(y · w)) from zero (index_add_ in the
     * dtype), or (sumFp32, Llama 4) Σ y in fp32 rounded once.
     */
    public static float[] scatter(float[] y, int[] rowOf, int[] ids, float[] w, int T, int k, int H, boolean sumFp32, boolean bf) {
        float[] out = new float[T * H];
        for (int t = 0; t < T; t++) {
            Integer[] order = new Integer[k];
            for (int j = 0; j < k; j++) order[j] = j;
            final int tt = t;
            java.util.Arrays.sort(order, (p, q) -> Integer.compare(ids[tt * k + p], ids[tt * k + q]));   // stable
            for (int h = 0; h < H; h++) {
                float acc = 0;
                for (int j : order) {
                    int s = t * k + j;
                    float v = y[rowOf[s] * H + h];
                    acc = sumFp32 ? acc + v : r(acc + r(v * w[s], bf), bf);
                }
                out[t * H + h] = sumFp32 ? r(acc, bf) : acc;
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- the whole block, composed as CudaMoe does

    /** What {@link #block} returns: router logits [T, E], chosen experts [T, k], the block's output [T, H]. */
    public record Block(float[] logits, int[] ids, float[] out) {
    }

    /**
     * The MoE block as {@code CudaMoe.block} composes its kernels, each step by its scalar definition above and the
     * weights packed by the same functions the upload uses ({@code CudaMoe.gateUpOf} ...), on the CPU: so the
     * composition and the packing of every expert layout can be tested against lowp without a GPU. GEMMs sum exactly
     * and round once (the GPU sums in fp32); bf rounds each op to bf16 where the kernels do.
     */
    public static Block block(modeldiff.model.MoeWeights w, modeldiff.model.ModelConfig c, modeldiff.forward.Fixes fixes,
                              float[] m, int T, boolean bf) {
        modeldiff.model.MoeSpec s = c.moe;
        int E = s.numExperts, k = s.topK, H = c.hiddenSize, ff = s.expertSize, n = T * k;
        boolean sigmoidGrouped = s.router == modeldiff.model.Family.Router.SIGMOID_GROUPED;
        float[] logits = linear(m, T, w.router(), bf, bf && !sigmoidGrouped);
        float[] corr = w.correctionBias() == null ? null : modeldiff.model.TensorStore.readFloats(w.correctionBias(), 0, E);
        Routing r = route(logits, corr, CudaMoe.routeArgs(s, fixes, T, bf), null);
        Grouping g = group(r.ids(), E);
        float[] xg = gather(m, g.slotOfRow(), s.scalesInput() ? r.weights() : null, n, k, H, bf);
        float[] guB = floats(CudaMoe.gateUpBiasOf(w, E, ff), bf), dnB = floats(CudaMoe.downBiasOf(w, E, H), bf);
        float[] gu = new float[n * 2 * ff], y = new float[n * H];
        Activation act = fixes.activation(c);
        boolean geluNew = !fixes.activationOverridden() && "gelu_new".equals(c.activationName);
        int mode = w.fused() != null && w.fused().interleaved() ? (fixes.mlpNoClamp ? 2 : 1) : 0;
        for (int e = 0; e < E; e++) {
            int lo = g.offsets()[e], rows = g.offsets()[e + 1] - lo;
            if (rows == 0) continue;
            float[] wgu = floats(CudaMoe.gateUpOf(w, e, H, ff), bf), wdn = floats(CudaMoe.downOf(w, e, H, ff), bf);
            float[] x = java.util.Arrays.copyOfRange(xg, lo * H, (lo + rows) * H);
            float[] a = gemm(x, rows, wgu, 2 * ff, H, guB == null ? null : java.util.Arrays.copyOfRange(guB, e * 2 * ff, (e + 1) * 2 * ff), bf);
            System.arraycopy(a, 0, gu, lo * 2 * ff, a.length);
            float[] h = actRounded(a, rows, ff, act, geluNew, mode, bf);
            float[] d = gemm(h, rows, wdn, H, ff, dnB == null ? null : java.util.Arrays.copyOfRange(dnB, e * H, (e + 1) * H), bf);
            System.arraycopy(d, 0, y, lo * H, d.length);
        }
        float[] out = scatter(y, g.rowOf(), r.ids(), r.weights(), T, k, H, s.scalesInput(), bf);
        if (w.shared() != null) {
            int S = w.shared().gate().out();
            float[] sg = linear(m, T, w.shared().gate(), bf, bf), su = linear(m, T, w.shared().up(), bf, bf);
            float[] gate = new float[T * 2 * S];
            for (int t = 0; t < T; t++) {
                System.arraycopy(sg, t * S, gate, t * 2 * S, S);
                System.arraycopy(su, t * S, gate, t * 2 * S + S, S);
            }
            float[] so = linear(actRounded(gate, T, S, act, geluNew, 0, bf), T, w.shared().down(), bf, bf);
            for (int i = 0; i < out.length; i++) out[i] = r(out[i] + so[i], bf);
        }
        return new Block(logits, r.ids(), out);
    }

    private static float[] floats(double[] d, boolean bf) {
        if (d == null) return null;
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = r((float) d[i], bf);
        return f;
    }

    /**
     * x [rows, in] · Wᵀ (+ b) for a release's linear, weights as the device holds them: R(fp32(Σ) + b), round: to bf16
     * (moe_router for the router; the shared expert's GEMMs sum in fp32 on the device, within noise of this).
     */
    static float[] linear(float[] x, int rows, modeldiff.model.LinearRef ref, boolean bfWeights, boolean round) {
        float[] wt = floats(ref.loadWeight(), bfWeights), b = floats(ref.loadBias(), bfWeights);
        int out = ref.out(), in = ref.in();
        float[] y = new float[rows * out];
        for (int row = 0; row < rows; row++)
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double) x[row * in + i] * wt[o * in + i];
                float v = (float) acc;                       // fp32 sum, then the bias in fp32, then the dtype
                y[row * out + o] = r(b == null ? v : v + b[o], round);
            }
        return y;
    }

    /** The grouped GEMM's epilogue on one expert: R(Σ x·w), with a bias R(R(Σ) + b). */
    private static float[] gemm(float[] x, int rows, float[] wt, int out, int in, float[] b, boolean bf) {
        float[] y = new float[rows * out];
        for (int row = 0; row < rows; row++)
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double) x[row * in + i] * wt[o * in + i];
                float v = r((float) acc, bf);
                y[row * out + o] = b == null ? v : r(v + b[o], bf);
            }
        return y;
    }

    /** moe_act (and mlp_act for the shared expert) op by op: gu [rows, 2·ff] → [rows, ff]. */
    static float[] actRounded(float[] gu, int rows, int ff, Activation kind, boolean geluNew, int mode, boolean bf) {
        float[] out = new float[rows * ff];
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < ff; j++) {
                float g = gu[row * 2 * ff + j], u = gu[row * 2 * ff + ff + j];
                if (mode == 0) {
                    float a = kind == Activation.GELU_TANH && geluNew && bf ? geluNew(g) : r((float) kind.apply(g), bf);
                    if (kind == Activation.RELU) a = Math.max(g, 0f);
                    out[row * ff + j] = r(a * u, bf);
                    continue;
                }
                if (mode == 1) {
                    g = Math.min(g, CudaMoe.GPT_OSS_LIMIT);
                    u = Math.max(-CudaMoe.GPT_OSS_LIMIT, Math.min(u, CudaMoe.GPT_OSS_LIMIT));
                }
                float sg = r(sigmoid(r(g * CudaMoe.GPT_OSS_ALPHA, bf)), bf);
                float glu = r(g * sg, bf);
                out[row * ff + j] = r(r(u + 1f, bf) * glu, bf);
            }
        return out;
    }

    /** HF's gelu_new formula op by op in bf16 (as mlp_act / moe_act compute it). */
    private static float geluNew(float x) {
        float cube = r(r(x * x, true) * x, true);
        float inner = r(x + r(0.044715f * cube, true), true);
        float t = r((float) Math.tanh(r(0.7978845608028654f * inner, true)), true);
        return r(r(0.5f * x, true) * r(1f + t, true), true);
    }
}
