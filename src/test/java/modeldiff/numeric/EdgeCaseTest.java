package modeldiff.numeric;

import static modeldiff.numeric.Precision.BF16;
import static modeldiff.numeric.Precision.FP16;
import static modeldiff.numeric.Precision.FP32;
import static modeldiff.numeric.Precision.FP8_E4M3;
import static modeldiff.numeric.Precision.FP8_E5M2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Hand-picked values whose answers are known from the format definitions and torch's converters. */
class EdgeCaseTest {
    static final float INF = Float.POSITIVE_INFINITY;

    /** Bit-exact equality, so -0.0 and 0.0 differ. */
    static void assertSame(float want, float got) {
        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), want + " vs " + got);
    }

    @Test
    void fp16OverflowAt65520() {
        assertSame(65504f, FP16.round(65504f));
        assertSame(65504f, FP16.round(Math.nextDown(65520f)));
        assertSame(INF, FP16.round(65520f)); // tie between 65504 (odd mantissa) and 2^16: goes up, overflows
        assertSame(-INF, FP16.round(-65520f));
        assertSame(INF, FP16.round(1e10f));
        assertEquals(0x7C00, FP16.toBits(65520f));
        assertEquals(0xFC00, FP16.toBits(-INF));
        assertEquals(65504.0, FP16.round(65519.99999999));
        assertEquals(Double.POSITIVE_INFINITY, FP16.round(65520.0));
        assertEquals(Double.POSITIVE_INFINITY, FP16.round(1e300));
    }

    @Test
    void bf16OverflowPastMax() {
        float max = 0x1.FEp127f; // 3.3895314e38
        assertSame(max, BF16.round(max));
        assertSame(max, BF16.round(Math.nextDown(0x1.FFp127f)));
        assertSame(INF, BF16.round(0x1.FFp127f)); // tie, max has an odd mantissa
        assertSame(INF, BF16.round(Float.MAX_VALUE));
        assertSame(-INF, BF16.round(-Float.MAX_VALUE));
        assertEquals(Double.POSITIVE_INFINITY, BF16.round(1e39));
    }

    @Test
    void fp8Overflow() {
        // torch's e4m3fn converter has no saturation: anything rounding past 448 becomes NaN.
        assertSame(448f, FP8_E4M3.round(464f)); // tie goes to 448 (even mantissa 110)
        assertTrue(Float.isNaN(FP8_E4M3.round(Math.nextUp(464f))));
        assertTrue(Float.isNaN(FP8_E4M3.round(480f)));
        assertTrue(Float.isNaN(FP8_E4M3.round(-1e6f)));
        assertTrue(Float.isNaN(FP8_E4M3.round(INF)));
        assertEquals(0xFF, FP8_E4M3.toBits(-INF));
        assertTrue(Double.isNaN(FP8_E4M3.round(464.0000001)));
        // e5m2 is IEEE-like: 61440 ties up to 2^16, which is Inf.
        assertSame(57344f, FP8_E5M2.round(Math.nextDown(61440f)));
        assertSame(INF, FP8_E5M2.round(61440f));
        assertEquals(0x7C, FP8_E5M2.toBits(INF));
    }

    @Test
    void fp16Subnormals() {
        float min = 0x1p-24f;
        assertSame(min, FP16.round(min));
        assertSame(0f, FP16.round(0x1p-25f));              // half of min: tie to even zero
        assertSame(-0f, FP16.round(-0x1p-25f));
        assertSame(min, FP16.round(Math.nextUp(0x1p-25f))); // a bit more than half rounds up
        assertSame(2 * min, FP16.round(3 * 0x1p-25f));     // 1.5 min: tie to even (2 min)
        assertSame(0x3FFp-24f, FP16.round(0x3FFp-24f));    // largest subnormal
        assertSame(0x1p-14f, FP16.round(0x3FF.8p-24f));    // tie rounds up into the smallest normal
        assertEquals(0x0001, FP16.toBits(min));
        assertEquals(min, FP16.minSubnormal());
        assertEquals(0x1p-14, FP16.minNormal());
    }

    @Test
    void bf16SubnormalsAreFloat32Subnormals() {
        assertSame(0x1p-133f, BF16.round(0x1p-133f));
        assertSame(0f, BF16.round(0x1p-134f));
        assertSame(0x1p-133f, BF16.round(Math.nextUp(0x1p-134f)));
        assertSame(0f, BF16.round(Float.MIN_VALUE));
        assertEquals(0x0001, BF16.toBits(0x1p-133f));
    }

    @Test
    void signedZeroPreserved() {
        for (Precision p : Precision.values()) {
            assertSame(-0f, p.round(-0f));
            assertSame(0f, p.round(0f));
            assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(p.round(-0.0)), p.id());
            if (p == Precision.FP64) continue;
            assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(p.round(-Double.MIN_VALUE)), p.id());
            if (p != FP32 && p != BF16) assertSame(-0f, p.round(-1e-30f)); // below their subnormals
        }
    }

    @Test
    void nanStaysNaN() {
        for (Precision p : Precision.values()) {
            assertTrue(Float.isNaN(p.round(Float.NaN)), p.id());
            assertTrue(Double.isNaN(p.round(Double.NaN)), p.id());
        }
        assertEquals(0x7FC0, BF16.toBits(Float.NaN));
        assertEquals(0x7E00, FP16.toBits(Float.NaN));
        assertEquals(0x7F, FP8_E4M3.toBits(Float.NaN));
        assertEquals(0x7F, FP8_E5M2.toBits(Float.NaN));
    }

    /**
     * d lies just above a bf16/fp16 midpoint, but so close that (float) d lands exactly on the
     * midpoint, and the second rounding then ties to even in the wrong direction.
     */
    @Test
    void roundDoubleRoundsOnceNotThroughFloat() {
        double d = 1 + 0x1p-8 + 0x1p-40;            // bf16 neighbours 1 and 1 + 2^-7
        assertEquals(1 + 0x1p-8, (double) (float) d); // the float step hits the midpoint
        assertEquals(1 + 0x1p-7, BF16.round(d));
        assertEquals(1.0, BF16.round((float) d));

        double up = 1 + 0x1p-7 + 0x1p-8 - 0x1p-40;  // just below a midpoint whose even side is above
        assertEquals(1 + 0x1p-7, BF16.round(up));
        assertEquals(1 + 0x1p-6, BF16.round((float) up));

        double h = 1 + 0x1p-11 + 0x1p-40;           // fp16 neighbours 1 and 1 + 2^-10
        assertEquals(1 + 0x1p-10, FP16.round(h));
        assertEquals(1.0, FP16.round((float) h));

        double sub = 0x1p-25 + 0x1p-60;              // just over half fp16's smallest subnormal
        assertEquals(0x1p-24, FP16.round(sub));
        assertEquals(0.0, FP16.round((float) sub));
        assertNotEquals(FP16.round(sub), (double) FP16.round((float) sub));

        double e4 = 1 + 0x1p-4 + 0x1p-40;            // e4m3 neighbours 1 and 1.125
        assertEquals(1.125, FP8_E4M3.round(e4));
        assertEquals(1.0, FP8_E4M3.round((float) e4));
    }

    @Test
    void fp32RoundIsJavaNarrowing() {
        assertEquals(1.0, FP32.round(1 + 0x1p-24));             // tie to even
        assertEquals(1 + 0x1p-23, FP32.round(1 + 0x1p-24 + 0x1p-40));
        assertEquals(Double.POSITIVE_INFINITY, FP32.round(1e39));
        assertEquals(0x1p-149, FP32.round(0x1p-149));           // float subnormals kept, not flushed
        assertSame(0.1f, FP32.round(0.1f));
        assertEquals(0.1, Precision.FP64.round(0.1));
    }
}
