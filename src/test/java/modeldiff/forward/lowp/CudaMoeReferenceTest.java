package modeldiff.forward.lowp;

import modeldiff.forward.Fixes;
import modeldiff.forward.cuda.MoeKernels;
import modeldiff.forward.cuda.MoeReference;
import modeldiff.model.Family;
import modeldiff.model.MoeSpec;
import modeldiff.numeric.Precision;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cuda pass's scalar definition of its routing kernel (forward/cuda/MoeReference, what the GPU self-test holds
 * moe_route to) against lowp's routing (LowpMoe.route, validated against HF traces), on the CPU: the same experts,
 * in the same order, for every router, with exact ties, groups, renormalisation, scaling and the routing fixes; the
 * weights within the fp32 sum's rounding (lowp sums the softmax in float64, the kernel in fp32) or one bf16 ulp.
 */
class CudaMoeReferenceTest {
    private final Random rnd = new Random(11);

    private void agree(Family.Router router, int T, int E, int k, boolean renorm, double scale, boolean inDtype, int nGroup,
                       int topkGroup, String fixIds, boolean bf, boolean ties) {
        MoeSpec spec = MoeSpec.of(router, E, k, 8, renorm, scale, inDtype, 1);
        if (nGroup > 1) spec = spec.withGroups(nGroup, topkGroup, 0);
        Fixes fixes = fixIds.isEmpty() ? Fixes.NONE : Fixes.parse(fixIds);
        float[] logits = new float[T * E];
        for (int i = 0; i < logits.length; i++) {
            float v = ties ? 0.5f * rnd.nextInt(5) - 1f : (float) (2 * rnd.nextGaussian());
            logits[i] = bf ? (float) Precision.BF16.round(v) : v;
        }
        float[] corr = null;
        if (router == Family.Router.SIGMOID_GROUPED) {
            corr = new float[E];
            for (int e = 0; e < E; e++) corr[e] = (float) (0.1 * rnd.nextGaussian());
        }
        LowpMoe.ToDtype toDtype = bf ? v -> (float) Precision.BF16.round(v) : v -> v;
        LowpMoe.Ops ops = new LowpMoe.Ops(null, null, toDtype, spec, fixes, corr);
        LowpMoe.Routing lowp = LowpMoe.route(logits, T, ops, null);
        MoeKernels.RouteArgs a = new MoeKernels.RouteArgs(T, E, k, router.ordinal(), fixes.renormalize(spec), spec.weightsInDtype,
                fixes.moeSoftmaxBeforeTopk, fixes.moeBiasInWeights, (float) fixes.routedScaling(spec), spec.nGroup, spec.topkGroup, bf);
        MoeReference.Routing mine = MoeReference.route(logits, corr, a, null);
        String what = router + " T" + T + " E" + E + " k" + k + " " + fixIds + (bf ? " bf16" : "") + (ties ? " ties" : "");
        assertArrayEquals(lowp.experts(), mine.ids(), what + ": experts");
        for (int i = 0; i < mine.weights().length; i++) {
            double l = lowp.weights()[i], m = mine.weights()[i];
            // lowp sums the softmax in float64, the kernel in fp32 in order: at most (E + 4) fp32 roundings apart;
            // bf16 weights: one bf16 ulp
            double tol = (bf ? 1.0 / 128 : (E + 4) * 0x1p-24) * Math.abs(l) + 1e-30;
            assertTrue(Math.abs(l - m) <= tol, what + ": weight " + i + " lowp " + l + " cuda reference " + m);
        }
    }

    @Test
    void everyRouterChoosesAsLowp() {
        for (boolean bf : new boolean[]{false, true})
            for (boolean ties : new boolean[]{false, true}) {
                agree(Family.Router.SOFTMAX_TOPK, 40, 8, 2, true, 1, false, 1, 1, "", bf, ties);               // Mixtral
                agree(Family.Router.SOFTMAX_TOPK, 40, 128, 8, false, 1, true, 1, 1, "", bf, ties);             // Qwen3-MoE
                agree(Family.Router.SOFTMAX_TOPK, 20, 64, 8, false, 1, true, 1, 1, "moe.renormalize=true,moe.routed_scaling=2.5", bf, ties);
                agree(Family.Router.TOPK_SOFTMAX, 40, 32, 4, false, 1, true, 1, 1, "", bf, ties);              // gpt-oss
                agree(Family.Router.TOPK_SOFTMAX, 40, 32, 4, false, 1, true, 1, 1, "moe.softmax_before_topk", bf, ties);
                agree(Family.Router.SIGMOID_GROUPED, 30, 8, 2, true, 2.5, false, 2, 1, "", bf, ties);          // GLM-4.5 fixture
                agree(Family.Router.SIGMOID_GROUPED, 30, 256, 8, true, 2.5, false, 8, 4, "", bf, ties);        // DeepSeek-V3
                agree(Family.Router.SIGMOID_GROUPED, 30, 64, 6, true, 1, false, 4, 2, "moe.bias_in_weights,moe.renormalize=false", bf, ties);
                agree(Family.Router.SIGMOID_TOPK, 30, 16, 1, false, 1, true, 1, 1, "", bf, ties);              // Llama 4
                agree(Family.Router.SIGMOID_TOPK, 30, 128, 2, false, 1, true, 1, 1, "moe.renormalize=true,moe.routed_scaling=2", bf, ties);
            }
    }

    /** The counting sort: experts in ascending id, each expert's slots in slot (token) order; rowOf and slotOfRow inverse. */
    @Test
    void groupingIsAStableCountingSort() {
        int[] ids = {3, 0, 0, 2, 3, 3, 0, 1};
        MoeReference.Grouping g = MoeReference.group(ids, 5);
        assertArrayEquals(new int[]{3, 1, 1, 3, 0}, g.counts());
        assertArrayEquals(new int[]{0, 3, 4, 5, 8, 8}, g.offsets());
        assertArrayEquals(new int[]{1, 2, 6, 7, 3, 0, 4, 5}, g.slotOfRow());
        for (int s = 0; s < ids.length; s++) assertEquals(s, g.slotOfRow()[g.rowOf()[s]]);
    }

    /** HF's order: per token its experts in ascending id, each product rounded, each add rounded, from zero. */
    @Test
    void scatterAddsInAscendingExpertOrder() {
        // one token, k = 3, chose experts 5, 3, 1 (slot order); expert 1's term (256) is added first
        int[] ids = {5, 3, 1};
        int[] rowOf = {2, 1, 0};
        float[] y = {1f, 1f, 1f};
        float[] w = {1f, 1f, 256f};
        // bf16 (8 significant bits): R(R(256 + 1) + 1) = 256, where slot order would give R(R(1 + 1) + 256) = 258
        assertEquals(256f, MoeReference.scatter(y, rowOf, ids, w, 1, 3, 1, false, true)[0]);
        assertEquals(258f, MoeReference.scatter(y, rowOf, ids, w, 1, 3, 1, false, false)[0]);
        // Llama 4: summed in fp32, rounded once
        assertEquals(3f, MoeReference.scatter(y, rowOf, ids, w, 1, 3, 1, true, true)[0]);
    }
}
