package modeldiff.compare;

import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Routing agreement on hand-made traces: set semantics, margins, the near-tie rule, categorical probes. */
class RoutingAgreementTest {
    /** 3 tokens, 4 experts, k = 2: logits and chosen ids per token. */
    private static Trace trace(double[] logits, double[] experts) {
        Trace t = new Trace("test", "float32", "cpu", new int[]{1, 2, 3}, 0);
        t.put("layers.0.router_logits", 4, logits);
        t.put("layers.0.experts", 2, experts);
        return t;
    }

    private static final double[] REF_LOGITS = {4, 3, 1, 0, /* t1 */ 2, 1.0, 0.999, 0, /* t2 */ 5, 3, 0, 0};
    private static final double[] REF_IDS = {0, 1, /* t1 */ 0, 1, /* t2 */ 0, 1};

    @Test
    void orderWithinTheKDoesNotCount() {
        RoutingAgreement r = RoutingAgreement.of(trace(REF_LOGITS, REF_IDS), trace(REF_LOGITS, new double[]{1, 0, 1, 0, 1, 0}));
        assertTrue(r.complete());
        assertEquals(1.0, r.layers().get(0).agreement());
    }

    @Test
    void aFlipAtANearTieIsNamedAsSuch() {
        // token 1: the reference's 2nd and 3rd logits differ by 0.001; the candidate moved them by 0.0006 each way
        double[] cand = REF_LOGITS.clone();
        cand[5] -= 0.0006;
        cand[6] += 0.0006;
        RoutingAgreement r = RoutingAgreement.of(trace(REF_LOGITS, REF_IDS), trace(cand, new double[]{0, 1, 0, 2, 0, 1}));
        RoutingAgreement.Layer l = r.layers().get(0);
        assertEquals(2, l.agreeing());
        assertEquals(1, l.flips().size());
        RoutingAgreement.Flip f = l.flips().get(0);
        assertEquals(1, f.token());
        assertArrayEquals(new int[]{0, 1}, f.reference());
        assertArrayEquals(new int[]{0, 2}, f.candidate());
        assertEquals(0.001, f.margin(), 1e-12);
        assertEquals(0.0006, f.logitChange(), 1e-12);
        assertTrue(f.nearTie());
        assertTrue(r.onlyNearTies());
    }

    @Test
    void aFlipFarFromATieIsNot() {
        // token 2: margin 3 (3 vs 0), logits unchanged: nothing but a bug sends it elsewhere
        RoutingAgreement r = RoutingAgreement.of(trace(REF_LOGITS, REF_IDS), trace(REF_LOGITS, new double[]{0, 1, 0, 1, 0, 3}));
        RoutingAgreement.Flip f = r.layers().get(0).flips().get(0);
        assertEquals(3.0, f.margin(), 0);
        assertFalse(f.nearTie());
        assertFalse(r.onlyNearTies());
        assertTrue(r.describe().get(0).contains("not a near-tie"), r.describe().toString());
    }

    @Test
    void expertChoicesAreCategoricalAndCanTeachAlone() {
        assertTrue(RoutingAgreement.isExpertChoice("layers.12.experts"));
        assertFalse(RoutingAgreement.isExpertChoice("layers.12.router_logits"));
        Trace only = RoutingAgreement.choicesOf(trace(REF_LOGITS, REF_IDS));
        assertEquals(java.util.List.of("layers.0.experts"), only.probeNames());
        assertTrue(RoutingAgreement.of(new Trace("d", "float32", "cpu", new int[]{1, 2, 3}, 0), only).isEmpty(), "dense: nothing to agree on");
    }
}
