package modeldiff.numeric;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * FP8 against the OCP 8-bit Floating Point Specification (OFP8) rev 1.0, Table 1:
 * https://www.opencompute.org/documents/ocp-8-bit-floating-point-specification-ofp8-revision-1-0-2023-12-01-pdf-1
 * (The exhaustive 256-pattern decode, round trip and boundary checks are in ExhaustivePatternTest.)
 */
class Fp8Test {
    static final Precision E4M3 = Precision.FP8_E4M3;
    static final Precision E5M2 = Precision.FP8_E5M2;

    @Test
    void e4m3fnSpecialValuesFromOcpTable() {
        assertEquals(448f, E4M3.fromBits(0b0_1111_110));           // max normal
        assertEquals(-448f, E4M3.fromBits(0b1_1111_110));
        assertEquals(0x1p-6f, E4M3.fromBits(0b0_0001_000));        // min normal
        assertEquals(0.875f * 0x1p-6f, E4M3.fromBits(0b0_0000_111)); // max subnormal
        assertEquals(0x1p-9f, E4M3.fromBits(0b0_0000_001));        // min subnormal
        assertTrue(Float.isNaN(E4M3.fromBits(0b0_1111_111)));
        assertTrue(Float.isNaN(E4M3.fromBits(0b1_1111_111)));
        assertEquals(256f, E4M3.fromBits(0b0_1111_000));           // no Inf: top exponent is ordinary
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(E4M3.fromBits(0x80)));
        int nans = 0;
        for (int b = 0; b < 256; b++) if (Float.isNaN(E4M3.fromBits(b))) nans++;
        assertEquals(2, nans);
    }

    @Test
    void e5m2SpecialValuesFromOcpTable() {
        assertEquals(57344f, E5M2.fromBits(0b0_11110_11));          // max normal
        assertEquals(0x1p-14f, E5M2.fromBits(0b0_00001_00));        // min normal
        assertEquals(0.75f * 0x1p-14f, E5M2.fromBits(0b0_00000_11)); // max subnormal
        assertEquals(0x1p-16f, E5M2.fromBits(0b0_00000_01));        // min subnormal
        assertEquals(Float.POSITIVE_INFINITY, E5M2.fromBits(0b0_11111_00));
        assertEquals(Float.NEGATIVE_INFINITY, E5M2.fromBits(0b1_11111_00));
        for (int m = 1; m < 4; m++) {
            assertTrue(Float.isNaN(E5M2.fromBits(0b0_11111_00 | m)));
            assertTrue(Float.isNaN(E5M2.fromBits(0b1_11111_00 | m)));
        }
    }

    /** Random floats over several scales; expected answer by a linear scan of all values. */
    @Test
    void randomFloatsRoundToBruteForceNearest() {
        Random rnd = new Random(20240611);
        for (Precision p : new Precision[] {E4M3, E5M2}) {
            RefFormat ref = p == E4M3 ? RefFormat.E4M3FN : RefFormat.E5M2;
            for (int i = 0; i < 1500; i++) {
                float x = switch (i % 3) {
                    case 0 -> (rnd.nextFloat() - 0.5f) * 2f * (float) p.maxFinite() * 1.2f; // incl. overflow
                    case 1 -> (rnd.nextBoolean() ? 1 : -1) * (float) Math.scalb(1.0 + rnd.nextDouble(), rnd.nextInt(36) - 20);
                    default -> Float.intBitsToFloat(rnd.nextInt());
                };
                if (!Float.isFinite(x)) continue;
                int want = ref.expectedBits(new BigDecimal(x), Float.floatToRawIntBits(x) < 0, true);
                assertEquals(want, p.toBits(x), () -> p.id() + " toBits(" + x + ")");
                assertTrue(ExhaustivePatternTest.sameFloat(ref.expectedFloat(want), p.round(x)),
                        () -> p.id() + " round(" + x + ") = " + p.round(x));
            }
        }
    }
}
