package modeldiff.forward.cuda;

import jcuda.driver.CUdeviceptr;
import modeldiff.compare.Metrics;
import modeldiff.forward.cuda.DeviceKernels.Act;
import modeldiff.forward.cuda.KernelChecks.Result;
import modeldiff.numeric.Activation;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The MoE kernels (modeldiff_moe.cu) against scalar Java definitions ({@link MoeReference}) on random inputs, at
 * several sizes including ragged expert groups (empty experts, one row, rows across tiles), exact and near ties in the
 * router scores, with {@value KernelChecks#GUARD} sentinel words on both sides of every output. Part of
 * {@link KernelChecks#runAll()}, hence of the GPU self-test.
 */
final class MoeChecks {
    private final MoeKernels mk;
    private final Random rnd = new Random(20261206);
    private final List<Result> results = new ArrayList<>();

    MoeChecks(CudaRuntime rt) {
        this.mk = new MoeKernels(rt);
    }

    /** A guarded device buffer of n 32-bit words (floats or ints), initialised to {@code init} (or sentinels). */
    private static final class Guarded implements AutoCloseable {
        final CUdeviceptr base, ptr;
        final int n;

        Guarded(int n, float[] init) {
            this.n = n;
            float[] h = new float[n + 2 * KernelChecks.GUARD];
            Arrays.fill(h, KernelChecks.SENTINEL);
            if (init != null) System.arraycopy(init, 0, h, KernelChecks.GUARD, n);
            base = CudaRuntime.upload(h);
            ptr = base.withByteOffset(KernelChecks.GUARD * 4L);
        }

        /** The payload, after checking the guards (null when they were overwritten). */
        float[] payload() {
            CudaRuntime.sync();
            float[] h = CudaRuntime.download(base, n + 2 * KernelChecks.GUARD);
            for (int i = 0; i < KernelChecks.GUARD; i++)
                if (Float.floatToRawIntBits(h[i]) != Float.floatToRawIntBits(KernelChecks.SENTINEL)
                        || Float.floatToRawIntBits(h[KernelChecks.GUARD + n + i]) != Float.floatToRawIntBits(KernelChecks.SENTINEL))
                    return null;
            return Arrays.copyOfRange(h, KernelChecks.GUARD, KernelChecks.GUARD + n);
        }

        int[] ints() {
            float[] f = payload();
            if (f == null) return null;
            int[] r = new int[n];
            for (int i = 0; i < n; i++) r[i] = Float.floatToRawIntBits(f[i]);
            return r;
        }

        @Override
        public void close() {
            CudaRuntime.free(base);
        }
    }

    private void exact(String kernel, String shape, int differing, boolean guards) {
        results.add(new Result(kernel, shape + " (" + differing + " differ)", differing == 0 ? -20 : 0, -20, guards));
    }

    private void close(String kernel, String shape, double[] expected, float[] got, double limit) {
        double lg = got == null ? 0 : Metrics.logL2(expected, widen(got));
        results.add(new Result(kernel, shape, lg, limit, got != null));
    }

    static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    private float[] randn(int n, double scale, boolean bf) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (rnd.nextGaussian() * scale);
            if (bf) f[i] = CudaRuntime.bf16Round(f[i]);
        }
        return f;
    }

    List<Result> run() {
        int[][] routerShapes = {{1, 1, 1}, {7, 8, 64}, {33, 128, 200}, {130, 60, 2048}, {5, 256, 7}};
        for (int[] r : routerShapes)
            for (boolean bf16W : new boolean[]{false, true}) {
                router(r[0], r[1], r[2], bf16W, false, false);
                router(r[0], r[1], r[2], bf16W, true, bf16W);
            }
        routeChecks();
        int[][] groupShapes = {{1, 1, 1}, {5, 2, 8}, {100, 8, 128}, {33, 4, 300}, {1000, 2, 8}, {7, 3, 5}};
        for (int[] s : groupShapes) group(s[0], s[1], s[2]);
        gather(9, 2, 8, 33, false, false);
        gather(40, 4, 16, 64, true, true);
        gather(3, 1, 4, 7, true, false);
        // grouped GEMM: ragged expert row counts (empty experts, 1 row, rows across the 64/128-row tiles), sizes
        // dividing no tile, every kernel (mma needs K % 8 == 0)
        int[][] gemmShapes = {{1, 1, 1, 1}, {3, 10, 13, 5}, {8, 70, 64, 32}, {5, 300, 130, 72}, {20, 200, 96, 64}, {4, 260, 257, 136}};
        for (int[] s : gemmShapes) {
            for (String kernel : new String[]{"moe_gemm_f32", "moe_gemm_bf16w", "moe_gemm_mma"}) {
                if (kernel.equals("moe_gemm_mma") && s[3] % 8 != 0) continue;
                gemm(kernel, s[0], s[1], s[2], s[3], false, false);
                gemm(kernel, s[0], s[1], s[2], s[3], true, true);
            }
        }
        for (Activation a : Activation.values()) act(37, 5, a, 0);
        act(50, 7, Activation.SILU, 1);
        act(50, 7, Activation.SILU, 2);
        act(3, 64, Activation.SILU, 0);
        for (boolean bf : new boolean[]{false, true}) {
            scatter(7, 2, 8, 33, false, bf);
            scatter(50, 4, 16, 64, false, bf);
            scatter(50, 4, 16, 64, true, bf);
            scatter(1, 1, 1, 5, false, bf);
        }
        return results;
    }

    // ---------------------------------------------------------------- router logits

    /**
     * moe_router against R(fp32(Σ a·w) + b) with the sum exact (float64): ≤ −7 in fp32 (a rare last-bit difference of
     * the float64 sum order allowed), ≤ −3.5 when rounded to bf16 (likewise one bf16 ulp somewhere, not a pattern).
     */
    private void router(int T, int E, int H, boolean bf16W, boolean bias, boolean round) {
        float[] a = randn(T * H, 1, true), w = randn(E * H, 0.1, bf16W), b = bias ? randn(E, 0.5, bf16W) : null;
        double[] exp = new double[T * E];
        for (int t = 0; t < T; t++)
            for (int e = 0; e < E; e++) {
                double acc = 0;
                for (int i = 0; i < H; i++) acc += (double) a[t * H + i] * w[e * H + i];
                float v = (float) acc;
                if (b != null) v += b[e];
                exp[t * E + e] = round ? CudaRuntime.bf16Round(v) : v;
            }
        CUdeviceptr da = CudaRuntime.upload(a), dw = bf16W ? CudaRuntime.upload(bits(w)) : CudaRuntime.upload(w);
        CUdeviceptr db = b == null ? null : CudaRuntime.upload(b);
        try (Guarded out = new Guarded(T * E, null)) {
            mk.router(out.ptr, Act.of(da), new DeviceKernels.Linear(dw, db, E, H, bf16W), T, round);
            close("moe_router", "T" + T + " E" + E + " H" + H + (bf16W ? " bf16 W" : " f32 W") + (bias ? " +bias" : "")
                    + (round ? " bf16-out" : ""), exp, out.payload(), round ? -3.5 : -7);
        }
        CudaRuntime.free(da);
        CudaRuntime.free(dw);
        CudaRuntime.free(db);
    }

    // ---------------------------------------------------------------- routing

    private void routeChecks() {
        // router ordinal, T, E, k, renormalise, in dtype, softmax_before_topk, bias_in_weights, scale, nGroup, topkGroup
        Object[][] cases = {
                {0, 7, 8, 2, true, false, false, false, 1f, 1, 1},          // Mixtral
                {0, 33, 128, 8, false, true, false, false, 1f, 1, 1},       // Qwen3-MoE without norm_topk_prob
                {0, 33, 60, 4, true, true, false, false, 2.5f, 1, 1},       // moe.routed_scaling
                {1, 20, 32, 4, false, true, false, false, 1f, 1, 1},        // gpt-oss
                {1, 20, 32, 4, false, true, true, false, 1f, 1, 1},         // moe.softmax_before_topk
                {1, 9, 8, 2, true, true, false, false, 1f, 1, 1},           // moe.renormalize=true
                {2, 17, 8, 2, true, false, false, false, 2.5f, 2, 1},       // GLM-4.5 fixture shape
                {2, 40, 256, 8, true, false, false, false, 2.5f, 8, 4},     // DeepSeek-V3
                {2, 40, 64, 6, false, false, false, true, 1f, 4, 2},        // moe.bias_in_weights, no renormalisation
                {3, 30, 16, 1, false, true, false, false, 1f, 1, 1},        // Llama 4
                {3, 30, 128, 2, true, true, false, false, 2f, 1, 1},
                {0, 130, 512, 32, true, true, false, false, 1f, 1, 1},      // the kernel's limits
        };
        for (Object[] c : cases) {
            MoeKernels.RouteArgs a0 = new MoeKernels.RouteArgs((int) c[1], (int) c[2], (int) c[3], (int) c[0], (boolean) c[4],
                    (boolean) c[5], (boolean) c[6], (boolean) c[7], (float) c[8], (int) c[9], (int) c[10], false);
            for (boolean bf : new boolean[]{false, true}) {
                MoeKernels.RouteArgs a = new MoeKernels.RouteArgs(a0.T(), a0.experts(), a0.topK(), a0.router(), a0.renormalize(),
                        a0.weightsInDtype(), a0.softmaxBeforeTopk(), a0.biasInWeights(), a0.scale(), a0.nGroup(), a0.topkGroup(), bf);
                for (int ties = 0; ties < 3; ties++) {
                    if (ties == 2 && a.router() != 3) continue;   // near ties: only where the choice is on the logits themselves
                    route(a, ties, false);
                }
                route(a, 0, true);
            }
        }
    }

    /** ties: 0 Gaussian scores, 1 exact ties (values from a small set), 2 near ties (neighbours one ulp apart). */
    private void route(MoeKernels.RouteArgs a, int ties, boolean forced) {
        int T = a.T(), E = a.experts(), k = a.topK();
        float[] logits = randn(T * E, 2, a.bf());
        if (ties == 1) for (int i = 0; i < logits.length; i++) logits[i] = 0.5f * rnd.nextInt(5) - 1f;
        if (ties == 2)
            for (int i = 0; i < logits.length; i += 2)
                if (i + 1 < logits.length) logits[i + 1] = Math.nextUp(logits[i]);
        float[] corr = a.router() == 2 ? randn(E, 0.1, false) : null;
        int[] forcedIds = forced ? randomIds(T, k, E) : null;
        MoeReference.Routing exp = MoeReference.route(logits, corr, a, forcedIds);
        CUdeviceptr dl = CudaRuntime.upload(logits), dc = corr == null ? null : CudaRuntime.upload(corr);
        float[] idsInit = null;
        if (forced) {
            idsInit = new float[T * k];
            for (int i = 0; i < idsInit.length; i++) idsInit[i] = forcedIds[i];
        }
        String shape = "router " + a.router() + " T" + T + " E" + E + " k" + k + (a.nGroup() > 1 ? " groups " + a.nGroup() + "/" + a.topkGroup() : "")
                + (a.renormalize() ? " renorm" : "") + (a.scale() != 1f ? " x" + a.scale() : "") + (a.softmaxBeforeTopk() ? " sm-first" : "")
                + (a.biasInWeights() ? " bias-in-w" : "") + (a.bf() ? " bf16" : "") + new String[]{"", " ties", " near-ties"}[ties]
                + (forced ? " forced" : "");
        try (Guarded ids = new Guarded(T * k, null); Guarded idsF = new Guarded(T * k, idsInit); Guarded w = new Guarded(T * k, null)) {
            mk.route(dl, dc, new MoeKernels.Routing(ids.ptr, idsF.ptr, w.ptr), a, forced);
            int[] gi = ids.ints();
            float[] gf = idsF.payload(), gw = w.payload();
            int bad = 0;
            for (int i = 0; i < T * k; i++)
                if (gi == null || gf == null || gi[i] != exp.ids()[i] || gf[i] != exp.ids()[i]) bad++;
            exact("moe_route", shape + " ids", bad, gi != null && gf != null);
            close("moe_route", shape + " weights", widen(exp.weights()), gw, a.bf() ? -2.2 : -5.5);
        }
        CudaRuntime.free(dl);
        CudaRuntime.free(dc);
    }

    /** T tokens' k distinct experts each, random. */
    private int[] randomIds(int T, int k, int E) {
        int[] ids = new int[T * k];
        for (int t = 0; t < T; t++) {
            int[] perm = new int[E];
            for (int e = 0; e < E; e++) perm[e] = e;
            for (int j = 0; j < k; j++) {
                int r = j + rnd.nextInt(E - j);
                int x = perm[j];
                perm[j] = perm[r];
                perm[r] = x;
                ids[t * k + j] = perm[j];
            }
        }
        return ids;
    }

    // ---------------------------------------------------------------- grouping, gather

    private void group(int T, int k, int E) {
        int[] ids = randomIds(T, k, Math.max(E, k));
        for (int i = 0; i < ids.length; i++) ids[i] %= E;
        // skew: a third of the experts get nothing (ragged groups)
        for (int i = 0; i < ids.length; i++) if (E > 3 && ids[i] % 3 == 1) ids[i] = (ids[i] + 1) % E;
        MoeReference.Grouping exp = MoeReference.group(ids, E);
        int n = ids.length;
        CUdeviceptr dIds = CudaRuntime.upload(ids);
        try (Guarded counts = new Guarded(E, null); Guarded offsets = new Guarded(E + 1, null); Guarded rowOf = new Guarded(n, null);
             Guarded slotOfRow = new Guarded(n, null)) {
            mk.group(dIds, n, E, new MoeKernels.Grouping(counts.ptr, offsets.ptr, rowOf.ptr, slotOfRow.ptr));
            String shape = "T" + T + " k" + k + " E" + E;
            exact("moe_group", shape + " counts", diff(counts.ints(), exp.counts()), counts.ints() != null);
            exact("moe_group", shape + " offsets", diff(offsets.ints(), exp.offsets()), offsets.ints() != null);
            exact("moe_group", shape + " rowOf", diff(rowOf.ints(), exp.rowOf()), rowOf.ints() != null);
            exact("moe_group", shape + " slotOfRow", diff(slotOfRow.ints(), exp.slotOfRow()), slotOfRow.ints() != null);
        }
        CudaRuntime.free(dIds);
    }

    private static int diff(int[] got, int[] exp) {
        if (got == null) return exp.length;
        int bad = 0;
        for (int i = 0; i < exp.length; i++) if (got[i] != exp[i]) bad++;
        return bad;
    }

    private void gather(int T, int k, int E, int H, boolean scaled, boolean bf) {
        int[] ids = randomIds(T, k, E);
        MoeReference.Grouping g = MoeReference.group(ids, E);
        float[] x = randn(T * H, 1, bf), w = randn(T * k, 1, bf);
        int n = T * k;
        float[] exp = MoeReference.gather(x, g.slotOfRow(), scaled ? w : null, n, k, H, bf);
        CUdeviceptr dx = CudaRuntime.upload(x), dw = CudaRuntime.upload(w), dSlot = CudaRuntime.upload(g.slotOfRow());
        CUdeviceptr outB = CudaRuntime.alloc(2L * n * H);
        String shape = "T" + T + " k" + k + " H" + H + (scaled ? " scaled" : "") + (bf ? " bf16" : "");
        try (Guarded out = new Guarded(n * H, null)) {
            mk.gather(new Act(out.ptr, outB), dx, new MoeKernels.Grouping(null, null, null, dSlot), scaled ? dw : null, n, k, H, bf);
            float[] got = out.payload();
            exact("moe_gather", shape, bitsDiffer(got, exp), got != null);
            exact("moe_gather", shape + " bf16 copy", bf16CopyDiffers(got, outB), got != null);
        }
        for (CUdeviceptr p : new CUdeviceptr[]{dx, dw, dSlot, outB}) CudaRuntime.free(p);
    }

    private static int bitsDiffer(float[] got, float[] exp) {
        if (got == null) return exp.length;
        int bad = 0;
        for (int i = 0; i < exp.length; i++) if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(exp[i])) bad++;
        return bad;
    }

    private static int bf16CopyDiffers(float[] got, CUdeviceptr outB) {
        if (got == null) return 1;
        short[] b = CudaRuntime.downloadShorts(outB, got.length);
        int bad = 0;
        for (int i = 0; i < got.length; i++) if (b[i] != CudaRuntime.bf16Bits(got[i])) bad++;
        return bad;
    }

    // ---------------------------------------------------------------- grouped GEMM

    /** n rows over E experts (ragged: some empty), W [E, N, K]. */
    private void gemm(String kernel, int E, int n, int N, int K, boolean bias, boolean round) {
        boolean bf16W = !kernel.equals("moe_gemm_f32");
        int[] counts = raggedCounts(n, E);
        int[] offsets = new int[E + 1];
        for (int e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
        float[] a = randn(n * K, 1, bf16W), w = randn(E * N * K, 1, bf16W), b = bias ? randn(E * N, 1, bf16W) : null;
        double[] exp = MoeReference.groupedGemm(a, w, b, offsets, N, K);
        CUdeviceptr da = CudaRuntime.upload(a), dw = bf16W ? CudaRuntime.upload(bits(w)) : CudaRuntime.upload(w);
        CUdeviceptr db = b == null ? null : CudaRuntime.upload(b), dOff = CudaRuntime.upload(offsets);
        CUdeviceptr daB = kernel.equals("moe_gemm_mma") ? CudaRuntime.upload(bits(a)) : null;
        MoeKernels.Grouped g = new MoeKernels.Grouped(dw, db, E, N, K, bf16W);
        String used = MoeKernels.gemmKernel(daB, g);
        try (Guarded out = new Guarded(n * N, null)) {
            mk.gemm(out.ptr, new Act(da, daB), g, new MoeKernels.Grouping(null, dOff, null, null), n, round);
            close(used, "E" + E + " rows " + Arrays.toString(counts).replace(" ", "") + " N" + N + " K" + K + (bias ? " +bias" : "")
                    + (round ? " bf16-out" : ""), exp, out.payload(), round ? -2.2 : -5.5);
        }
        for (CUdeviceptr p : new CUdeviceptr[]{da, dw, db, dOff, daB}) CudaRuntime.free(p);
    }

    /** n split over E experts unevenly: the first expert empty (when E > 1), one of one row, the rest random. */
    private int[] raggedCounts(int n, int E) {
        int[] c = new int[E];
        int left = n;
        for (int e = 0; e < E && left > 0; e++) {
            if (E > 1 && e == 0) continue;
            int take = e == E - 1 ? left : e == 1 ? 1 : rnd.nextInt(left + 1);
            c[e] = Math.min(take, left);
            left -= c[e];
        }
        if (left > 0) c[E - 1] += left;
        return c;
    }

    private static short[] bits(float[] f) {
        short[] s = new short[f.length];
        for (int i = 0; i < f.length; i++) s[i] = CudaRuntime.bf16Bits(f[i]);
        return s;
    }

    // ---------------------------------------------------------------- activation, scatter

    private void act(int rows, int ff, Activation kind, int mode) {
        float[] gu = randn(rows * 2 * ff, 3, false);
        double[] exp = MoeReference.act(gu, rows, ff, kind, mode, CudaMoe.GPT_OSS_ALPHA, CudaMoe.GPT_OSS_LIMIT);
        CUdeviceptr dgu = CudaRuntime.upload(gu), outB = CudaRuntime.alloc(2L * rows * ff);
        String shape = rows + "x" + ff + " " + (mode == 0 ? kind.id() : mode == 1 ? "gpt-oss clamped" : "gpt-oss unclamped");
        try (Guarded out = new Guarded(rows * ff, null)) {
            mk.act(new Act(out.ptr, outB), dgu, rows, ff, new MoeKernels.ActArgs(kind.ordinal(), false, mode,
                    CudaMoe.GPT_OSS_ALPHA, CudaMoe.GPT_OSS_LIMIT, false));
            float[] got = out.payload();
            close("moe_act", shape, exp, got, -5.5);
            exact("moe_act", shape + " bf16 copy", bf16CopyDiffers(got, outB), got != null);
        }
        CudaRuntime.free(dgu);
        CudaRuntime.free(outB);
    }

    /** bf16 mode: bit-exact against the scalar definition (products and adds rounded as the kernel does); fp32: ≤ −5.5. */
    private void scatter(int T, int k, int E, int H, boolean sumFp32, boolean bf) {
        int[] ids = randomIds(T, k, E);
        MoeReference.Grouping g = MoeReference.group(ids, E);
        int n = T * k;
        float[] y = randn(n * H, 1, bf), w = randn(n, 1, false);
        float[] exp = MoeReference.scatter(y, g.rowOf(), ids, w, T, k, H, sumFp32, bf);
        CUdeviceptr dy = CudaRuntime.upload(y), dRow = CudaRuntime.upload(g.rowOf()), dIds = CudaRuntime.upload(ids), dw = CudaRuntime.upload(w);
        String shape = "T" + T + " k" + k + " E" + E + " H" + H + (sumFp32 ? " fp32-sum" : "") + (bf ? " bf16" : "");
        try (Guarded out = new Guarded(T * H, null)) {
            mk.scatter(out.ptr, dy, new MoeKernels.Grouping(null, null, dRow, null), new MoeKernels.Routing(dIds, null, dw), T, k, H, sumFp32, bf);
            float[] got = out.payload();
            if (bf) exact("moe_scatter", shape, bitsDiffer(got, exp), got != null);
            else close("moe_scatter", shape, widen(exp), got, -5.5);
        }
        for (CUdeviceptr p : new CUdeviceptr[]{dy, dRow, dIds, dw}) CudaRuntime.free(p);
    }
}
