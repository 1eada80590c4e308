package modeldiff.numeric;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

class RoundingPropertiesTest {

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

    /** Random bit patterns hit every binade equally; the narrow band keeps fp8/fp16 ranges busy. */
    @Provide
    Arbitrary<Float> floats() {
        Arbitrary<Integer> band = Arbitraries.oneOf(
                Arbitraries.integers().between(0, 0x47800000), // +0 .. 65536
                Arbitraries.integers().between(Integer.MIN_VALUE, Integer.MIN_VALUE + 0x47800000));
        return Arbitraries.oneOf(Arbitraries.integers(), band)
                .map(Float::intBitsToFloat).filter(Float::isFinite);
    }

    @Provide
    Arbitrary<Double> doubles() {
        long top = Double.doubleToRawLongBits(65536.0);
        Arbitrary<Long> band = Arbitraries.oneOf(
                Arbitraries.longs().between(0, top), Arbitraries.longs().between(Long.MIN_VALUE, Long.MIN_VALUE + top));
        return Arbitraries.oneOf(Arbitraries.longs(), band)
                .map(Double::longBitsToDouble).filter(Double::isFinite);
    }

    @Property
    void idempotent(@ForAll Precision p, @ForAll("floats") float x) {
        float r = p.round(x);
        assertTrue(ExhaustivePatternTest.sameFloat(r, p.round(r)), () -> p + " " + x);
        double d = p.round((double) x);
        assertEquals(Double.doubleToRawLongBits(d), Double.doubleToRawLongBits(p.round(d)));
    }

    /** b is a, stepped up a few hundred floats, so pairs straddle rounding boundaries often. */
    @Property
    void monotone(@ForAll Precision p, @ForAll("floats") float a, @ForAll @IntRange(max = 300) int steps) {
        float stepped = a;
        for (int i = 0; i < steps; i++) stepped = Math.nextUp(stepped);
        float b = stepped;
        float ra = p.round(a), rb = p.round(b);
        Assume.that(!Float.isNaN(ra) && !Float.isNaN(rb)); // e4m3fn overflows to NaN, which is unordered
        assertTrue(ra <= rb, () -> p + ": round(" + a + ")=" + ra + " > round(" + b + ")=" + rb);
    }

    @Property
    void withinHalfUlp(@ForAll Precision p, @ForAll("floats") float x) {
        Assume.that(Math.abs(x) <= p.maxFinite());
        BigDecimal err = new BigDecimal(p.round(x)).subtract(new BigDecimal(x)).abs();
        assertTrue(err.compareTo(halfUlp(p, x)) <= 0, () -> p + " round(" + x + ") = " + p.round(x));
    }

    @Property
    void doubleWithinHalfUlp(@ForAll Precision p, @ForAll("doubles") double x) {
        Assume.that(Math.abs(x) <= p.maxFinite());
        BigDecimal err = new BigDecimal(p.round(x)).subtract(new BigDecimal(x)).abs();
        assertTrue(err.compareTo(halfUlp(p, x)) <= 0, () -> p + " round(" + x + ") = " + p.round(x));
    }

    /** A float widens to double exactly, so both overloads must agree on it. */
    @Property
    void overloadsAgreeOnFloats(@ForAll Precision p, @ForAll("floats") float x) {
        assertEquals(Double.doubleToRawLongBits(p.round(x)), Double.doubleToRawLongBits(p.round((double) x)));
    }
}
