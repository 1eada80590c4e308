package modeldiff.compare;

import modeldiff.numeric.Precision;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A probe HF keeps in float32 inside a bf16 run (sigmoid router logits): float32 sum-order differences are not bf16
 * disagreements, while bf16-sized differences still are.
 */
class HeldInFp32Test {
    private static double[] values(int n, boolean bf16Exact) {
        Random r = new Random(7);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            float x = (float) r.nextGaussian();
            v[i] = bf16Exact ? Precision.BF16.round(x) : x;
        }
        return v;
    }

    @Test
    void float32OrderDifferencesAreWithinTheBudget() {
        double[] hf = values(256, false), ours = hf.clone();
        for (int i = 0; i < ours.length; i += 3) ours[i] = Math.nextUp((float) ours[i]);   // a third differ by one fp32 ulp
        assertTrue(TieBudget.heldInFp32(hf, Precision.BF16));
        assertTrue(new TieBudget().excess(Precision.BF16, "layers.1.router_logits", hf, ours, -7.3) <= 0);
    }

    @Test
    void bf16SizedDifferencesStillExceed() {
        double[] hf = values(256, false), ours = hf.clone();
        for (int i = 0; i < ours.length; i += 3) ours[i] *= 1 + 1.0 / 64;   // two bf16 ulps off in a third
        assertTrue(new TieBudget().excess(Precision.BF16, "layers.1.router_logits", hf, ours, -2.5) > 0);
    }

    @Test
    void bf16ValuedProbesAreCountedAsBefore() {
        double[] hf = values(256, true), ours = hf.clone();
        assertFalse(TieBudget.heldInFp32(hf, Precision.BF16));
        for (int i = 0; i < ours.length; i += 3) ours[i] = Precision.BF16.round((float) (ours[i] * (1 + 1.0 / 128)));
        assertTrue(new TieBudget().excess(Precision.BF16, "layers.1.mlp_out", hf, ours, -2.5) > 0);
    }
}
