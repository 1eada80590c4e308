package modeldiff.numeric;

import modeldiff.model.RopeSpec;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Frequencies checked against values worked out by hand from the published formulas. */
class RopeTest {
    @Test
    void defaultFrequenciesAreThetaPowers() {
        Rope.Frequencies f = modeldiff.forward.reference.RopeFormulas.frequencies(RopeSpec.plain(10000, 1.0, 2048), 8, 10);
        // dim 8: exponents 0, 2/8, 4/8, 6/8 → 1, 10^-1, 10^-2, 10^-3
        assertEquals(1.0, f.invFreq()[0], 0);
        assertEquals(0.1, f.invFreq()[1], 1e-16);
        assertEquals(0.01, f.invFreq()[2], 1e-17);
        assertEquals(0.001, f.invFreq()[3], 1e-18);
        assertEquals(1.0, f.attentionScaling());
    }

    @Test
    void llama3KeepsHighFrequenciesAndDividesLowOnes() {
        // Llama 3.1 8B settings: theta 5e5, head_dim 128, factor 8, low 1, high 4, original 8192.
        RopeSpec s = new RopeSpec("llama3", 500000, 1.0, 8, 1, 4, 8192, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN, true, null, null, 131072);
        double[] inv = modeldiff.forward.reference.RopeFormulas.frequencies(s, 128, 10).invFreq();
        // i = 0: wavelength 2π < 8192/4, untouched.
        assertEquals(1.0, inv[0], 0);
        // i = 63: wavelength 2π·5e5^(126/128) ≈ 2.4e6 > 8192, divided by the factor.
        assertEquals(Math.pow(500000, -126.0 / 128) / 8, inv[63], 1e-20);
        // A medium band exists: some i has inv strictly between inv/8 and inv.
        boolean medium = false;
        for (int i = 0; i < 64; i++) {
            double plain = Math.pow(500000, -2.0 * i / 128);
            if (inv[i] < plain * (1 - 1e-12) && inv[i] > plain / 8 * (1 + 1e-12)) medium = true;
        }
        assertEquals(true, medium);
    }

    @Test
    void linearDividesEveryFrequency() {
        RopeSpec s = new RopeSpec("linear", 10000, 1.0, 4, Double.NaN, Double.NaN, 0, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN, Double.NaN, true, null, null, 2048);
        assertEquals(0.25, modeldiff.forward.reference.RopeFormulas.frequencies(s, 8, 10).invFreq()[0], 0);
    }

    @Test
    void partialRotaryTruncatesLikeHf() {
        assertEquals(8, Rope.rotaryDim(16, 0.5));
        assertEquals(24, Rope.rotaryDim(32, 0.75));
        assertEquals(3, Rope.rotaryDim(10, 0.35)); // int(3.5) = 3, as Python's int() truncates
    }
}
