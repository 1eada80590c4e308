package modeldiff.compare;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Metrics against numbers worked out by hand in the comments, not by running the code under test. */
class MetricsTest {
    @Test
    void relativeErrorOfThreeFourVector() {
        // r = [3, 4], c = [3, 5]: c − r = [0, 1], ‖c − r‖ = 1, ‖r‖ = 5, so ‖c − r‖/‖r‖ = 1/5.
        Metrics.ProbeMetrics m = Metrics.compare(new double[]{3, 4}, new double[]{3, 5}, 1, 2);
        assertEquals(Math.log10(0.2), m.logL2(), 1e-15);
        assertEquals(0.04, m.nmse(), 1e-15);            // (1/5)²
        assertEquals(1.0, m.maxAbs(), 0);
        // cos = r·c / (‖r‖‖c‖) = (9 + 20) / (5 · √34)
        assertEquals(29 / (5 * Math.sqrt(34)), m.cosine(), 1e-15);
        assertEquals(1, m.identical());
        assertEquals(0.5, m.identicalFraction(), 0);
        assertEquals(0, m.nonFinite());
    }

    @Test
    void perTokenErrorIsPerRow() {
        // Same numbers as two tokens of width 1: token 0 is identical (clamped to the floor), token 1 is off by 1/4.
        Metrics.ProbeMetrics m = Metrics.compare(new double[]{3, 4}, new double[]{3, 5}, 2, 1);
        assertArrayEquals(new double[]{Metrics.LOG_L2_FLOOR, Math.log10(0.25)}, m.perTokenLogL2(), 1e-15);
        assertEquals(Math.log10(0.2), m.logL2(), 1e-15); // the whole-tensor number does not depend on the split
    }

    @Test
    void identicalTensorsSitAtTheFloorAndNanIsCountedNotAveraged() {
        assertEquals(Metrics.LOG_L2_FLOOR, Metrics.logL2(new double[]{1, -2}, new double[]{1, -2}), 0);
        Metrics.ProbeMetrics m = Metrics.compare(new double[]{1, 2}, new double[]{1, Double.NaN}, 1, 2);
        assertEquals(1, m.nonFinite());
        // Rows [NaN, +Inf], [1, 2], [3, NaN]: 2, 0, 1 non-finite.
        assertArrayEquals(new int[]{2, 0, 1}, Metrics.nonFinitePerRow(
                new double[]{Double.NaN, Double.POSITIVE_INFINITY, 1, 2, 3, Double.NaN}, 3, 2));
    }

    @Test
    void klOfTwoHandMadeDistributions() {
        // Token 0: p = softmax([0, 0]) = [1/2, 1/2]; q = softmax([0, ln 3]) = [1/4, 3/4].
        //   KL(p‖q) = ½ ln(½ / ¼) + ½ ln(½ / ¾) = ½ ln 2 + ½ ln(2/3) = ½ ln(4/3).
        //   top-1: p's argmax is index 0 (first of a tie), q's is 1: disagree. Δp at p's top = ¼ − ½ = −¼.
        // Token 1: identical rows [2, 0]: KL 0, agree, Δp 0.
        double[] ref = {0, 0, 2, 0};
        double[] cand = {0, Math.log(3), 2, 0};
        Metrics.LogitMetrics l = Metrics.logits(ref, cand, 2, 2);
        double kl0 = 0.5 * Math.log(4.0 / 3.0);
        assertEquals(kl0 / 2, l.klMean(), 1e-15);
        assertEquals(kl0, l.klMax(), 1e-15);
        assertEquals(0.5, l.top1Agreement(), 0);
        assertEquals(Math.sqrt(0.0625 / 2), l.rmsDeltaPTop(), 1e-15);
    }

    @Test
    void klIsShiftInvariantLikeSoftmax() {
        // Adding a constant to every logit of a row changes nothing: KL 0, full agreement.
        Metrics.LogitMetrics l = Metrics.logits(new double[]{1, 2, 3}, new double[]{101, 102, 103}, 1, 3);
        assertEquals(0, l.klMean(), 1e-12);
        assertEquals(1.0, l.top1Agreement(), 0);
    }
}
