package modeldiff.numeric;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Properties of rounding checked on seeded random samples (plain JUnit: the property-testing library jqwik asks
 * automated agents not to use it, see jqwik issues #708/#710, so we respect that).
 */
class RoundingPropertiesTest {
    private static final int SAMPLES = 20_000;

    /** Stored mantissa bits and minimum normal exponent, straight from the format definitions. */
    static int manBits(Precision p) {
        return switch (p) {
            case FP64 -> 52;
            case FP32 -> 23;
            case BF16 -> 7;
            case FP16 -> 10;
            case FP8_E4M3 -> 3;
            case FP8_E5M2 -> 2;
        };
    }

    static int emin(Precision p) {
        return switch (p) {
            case FP64 -> -1022;
            case FP32, BF16 -> -126;
            case FP16, FP8_E5M2 -> -14;
            case FP8_E4M3 -> -6;
        };
    }

    /** Half the target's spacing at x: 2^(max(exponent(x), emin) - mantissaBits - 1). */
    static BigDecimal halfUlp(Precision p, double x) {
        int k = Math.max(Math.getExponent(x), emin(p));
        return RefFormat.pow2(k - manBits(p) - 1);
    }

    /** Random bit patterns hit every binade equally; half the samples stay within ±65536 to keep fp8/fp16 busy. */
    static float randomFloat(Random rnd) {
        while (true) {
            int bits = rnd.nextBoolean() ? rnd.nextInt() : (rnd.nextInt(0x47800001) | (rnd.nextBoolean() ? Integer.MIN_VALUE : 0));
            float f = Float.intBitsToFloat(bits);
            if (Float.isFinite(f)) return f;
        }
    }

    static double randomDouble(Random rnd) {
        long top = Double.doubleToRawLongBits(65536.0);
        while (true) {
            long bits = rnd.nextBoolean() ? rnd.nextLong()
                    : (Math.floorMod(rnd.nextLong(), top + 1) | (rnd.nextBoolean() ? Long.MIN_VALUE : 0));
            double d = Double.longBitsToDouble(bits);
            if (Double.isFinite(d)) return d;
        }
    }

    @Test
    void idempotent() {
        Random rnd = new Random(1);
        for (Precision p : Precision.values())
            for (int i = 0; i < SAMPLES; i++) {
                float x = randomFloat(rnd);
                float r = p.round(x);
                assertTrue(ExhaustivePatternTest.sameFloat(r, p.round(r)), () -> p + " " + x);
                double d = p.round((double) x);
                assertEquals(Double.doubleToRawLongBits(d), Double.doubleToRawLongBits(p.round(d)));
            }
    }

    /** b is a stepped up a few hundred floats, so pairs straddle rounding boundaries often. */
    @Test
    void monotone() {
        Random rnd = new Random(2);
        for (Precision p : Precision.values())
            for (int i = 0; i < SAMPLES; i++) {
                float a = randomFloat(rnd);
                float b = a;
                for (int s = rnd.nextInt(301); s > 0; s--) b = Math.nextUp(b);
                float ra = p.round(a), rb = p.round(b);
                if (Float.isNaN(ra) || Float.isNaN(rb)) continue; // e4m3fn overflows to NaN, which is unordered
                float fa = a, fb = b;
                assertTrue(ra <= rb, () -> p + ": round(" + fa + ")=" + ra + " > round(" + fb + ")=" + rb);
            }
    }

    @Test
    void withinHalfUlp() {
        Random rnd = new Random(3);
        for (Precision p : Precision.values())
            for (int i = 0; i < SAMPLES; i++) {
                float x = randomFloat(rnd);
                if (Math.abs(x) > p.maxFinite()) continue;
                BigDecimal err = new BigDecimal(p.round(x)).subtract(new BigDecimal(x)).abs();
                assertTrue(err.compareTo(halfUlp(p, x)) <= 0, () -> p + " round(" + x + ") = " + p.round(x));
            }
    }

    @Test
    void doubleWithinHalfUlp() {
        Random rnd = new Random(4);
        for (Precision p : Precision.values())
            for (int i = 0; i < SAMPLES; i++) {
                double x = randomDouble(rnd);
                if (Math.abs(x) > p.maxFinite()) continue;
                BigDecimal err = new BigDecimal(p.round(x)).subtract(new BigDecimal(x)).abs();
                assertTrue(err.compareTo(halfUlp(p, x)) <= 0, () -> p + " round(" + x + ") = " + p.round(x));
            }
    }

    /** A float widens to double exactly, so both overloads must agree on it. */
    @Test
    void overloadsAgreeOnFloats() {
        Random rnd = new Random(5);
        for (Precision p : Precision.values())
            for (int i = 0; i < SAMPLES; i++) {
                float x = randomFloat(rnd);
                assertEquals(Double.doubleToRawLongBits(p.round(x)), Double.doubleToRawLongBits(p.round((double) x)));
            }
    }
}
