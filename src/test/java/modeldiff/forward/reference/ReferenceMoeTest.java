package modeldiff.forward.reference;

import modeldiff.forward.Fixes;
import modeldiff.forward.kernel.Parallel;
import modeldiff.model.Family;
import modeldiff.model.MoeSpec;
import modeldiff.numeric.Activation;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The float64 routers against values worked out by hand: logits ln 1, ln 2, ln 3, ln 4 give softmax probabilities
 * 0.1, 0.2, 0.3, 0.4 exactly, so every rule's weights are simple fractions.
 */
class ReferenceMoeTest {
    private static final double[] LOGITS = {0, Math.log(2), Math.log(3), Math.log(4)};

    private static ReferenceMoe.Routing route(Family.Router router, boolean renorm, double scale, String fixes, double[] logits) {
        MoeSpec s = MoeSpec.of(router, 4, 2, 8, renorm, scale, false, 1);
        return ReferenceMoe.route(logits, logits.length / 4, new ReferenceMoe.Setup(s, Fixes.parse(fixes), Activation.SILU, Parallel.of(1)), null);
    }

    @Test
    void softmaxThenTopKWithAndWithoutRenormalisation() {
        ReferenceMoe.Routing plain = route(Family.Router.SOFTMAX_TOPK, false, 1, "", LOGITS);
        assertArrayEquals(new int[]{3, 2}, plain.experts());
        assertArrayEquals(new double[]{0.4, 0.3}, plain.weights(), 1e-15);
        assertArrayEquals(new double[]{4 / 7.0, 3 / 7.0}, route(Family.Router.SOFTMAX_TOPK, true, 1, "", LOGITS).weights(), 1e-15);
        // the fixes override the config either way
        assertArrayEquals(new double[]{4 / 7.0, 3 / 7.0}, route(Family.Router.SOFTMAX_TOPK, false, 1, "moe.renormalize=true", LOGITS).weights(), 1e-15);
        assertArrayEquals(new double[]{0.4, 0.3}, route(Family.Router.SOFTMAX_TOPK, true, 1, "moe.renormalize=false", LOGITS).weights(), 1e-15);
    }

    @Test
    void routedScalingMultipliesTheFinalWeights() {
        assertArrayEquals(new double[]{2.5 * 4 / 7, 2.5 * 3 / 7}, route(Family.Router.SOFTMAX_TOPK, true, 2.5, "", LOGITS).weights(), 1e-15);
        assertArrayEquals(new double[]{4 / 7.0, 3 / 7.0}, route(Family.Router.SOFTMAX_TOPK, true, 2.5, "moe.routed_scaling=1", LOGITS).weights(), 1e-15);
    }

    @Test
    void topKThenSoftmaxAndItsBug() {
        // gpt-oss: softmax over the chosen logits ln 4, ln 3 = 4/7, 3/7; the bug takes them from the softmax over all
        assertArrayEquals(new double[]{4 / 7.0, 3 / 7.0}, route(Family.Router.TOPK_SOFTMAX, false, 1, "", LOGITS).weights(), 1e-15);
        assertArrayEquals(new double[]{0.4, 0.3}, route(Family.Router.TOPK_SOFTMAX, false, 1, "moe.softmax_before_topk", LOGITS).weights(), 1e-15);
    }

    @Test
    void tiesGoToTheLowerIndexAndTokensAreIndependent() {
        double[] two = {1, 5, 5, 0, /* token 1: */ 3, 2, 1, 0};
        ReferenceMoe.Routing r = route(Family.Router.SOFTMAX_TOPK, true, 1, "", two);
        assertArrayEquals(new int[]{1, 2, 0, 1}, r.experts());
        assertArrayEquals(new double[]{0.5, 0.5}, java.util.Arrays.copyOf(r.weights(), 2), 1e-15);
        double e = Math.E;
        assertArrayEquals(new double[]{e / (e + 1), 1 / (e + 1)}, java.util.Arrays.copyOfRange(r.weights(), 2, 4), 1e-15);
    }

    /**
     * DeepSeek/GLM sigmoid router, 4 experts in 2 groups, top 1 group, k = 2. Logits 0 give scores ½; the correction
     * bias (+0.3, −0.3 | +0.1, +0.2) makes group 0 score 0.8 + 0.2 = 1.0 and group 1 0.6 + 0.7 = 1.3, so experts 3
     * and 2 are chosen, and their weights come from the unbiased scores: ½, ½ renormalised = 0.5 each, × 2.5.
     * With moe.bias_in_weights they come from the biased ones: 0.7 and 0.6, renormalised 7/13 and 6/13, × 2.5.
     */
    @Test
    void sigmoidGroupLimitedRouterUsesTheBiasOnlyToChoose() {
        MoeSpec s = MoeSpec.of(Family.Router.SIGMOID_GROUPED, 4, 2, 8, true, 2.5, false, 1).withGroups(2, 1, 0);
        double[] bias = {0.3, -0.3, 0.1, 0.2};
        double[] logits = {0, 0, 0, 0};
        var setup = new ReferenceMoe.Setup(s, Fixes.NONE, Activation.SILU, Parallel.of(1), bias);
        ReferenceMoe.Routing r = ReferenceMoe.route(logits, 1, setup, null);
        assertArrayEquals(new int[]{3, 2}, r.experts());
        assertArrayEquals(new double[]{1.25, 1.25}, r.weights(), 1e-12);
        var buggy = new ReferenceMoe.Setup(s, Fixes.parse("moe.bias_in_weights"), Activation.SILU, Parallel.of(1), bias);
        assertArrayEquals(new double[]{2.5 * 7 / 13, 2.5 * 6 / 13}, ReferenceMoe.route(logits, 1, buggy, null).weights(), 1e-12);
    }

    @Test
    void forcedExpertsAreWeighedByTheRouterRule() {
        MoeSpec s = MoeSpec.of(Family.Router.SOFTMAX_TOPK, 4, 2, 8, true, 1, false, 1);
        ReferenceMoe.Routing r = ReferenceMoe.route(LOGITS, 1, new ReferenceMoe.Setup(s, Fixes.NONE, Activation.SILU, Parallel.of(1)), new int[]{0, 3});
        assertArrayEquals(new int[]{0, 3}, r.experts());
        assertArrayEquals(new double[]{0.2, 0.8}, r.weights(), 1e-15);
    }
}
