package modeldiff.numeric;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every bit pattern of the 16- and 8-bit formats, checked against {@link RefFormat}. */
class ExhaustivePatternTest {

    static Stream<Arguments> formats() {
        return Stream.of(
                Arguments.of(Precision.BF16, RefFormat.BF16),
                Arguments.of(Precision.FP16, RefFormat.FP16),
                Arguments.of(Precision.FP8_E4M3, RefFormat.E4M3FN),
                Arguments.of(Precision.FP8_E5M2, RefFormat.E5M2));
    }

    /** Collects mismatches so one failure report shows the first few instead of stopping at one. */
    static final class Failures {
        final List<String> list = new ArrayList<>();
        int count;

        void check(boolean ok, String what) {
            if (!ok && count++ < 20) list.add(what);
        }

        void assertNone() {
            assertTrue(count == 0, count + " mismatches, first: " + String.join("\n", list));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void decodeAndRoundTripEveryPattern(Precision p, RefFormat ref) {
        Failures f = new Failures();
        for (int b = 0; b < 1 << ref.width; b++) {
            RefFormat.Decoded d = ref.decode(b);
            float v = p.fromBits(b);
            String at = p.id() + " 0x" + Integer.toHexString(b) + " -> " + v;
            switch (d.kind()) {
                case NAN -> f.check(Float.isNaN(v), at + " should be NaN");
                case INF -> f.check(v == (d.negative() ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY), at);
                case FINITE -> {
                    f.check(new BigDecimal(v).compareTo(d.value()) == 0, at + " expected " + d.value());
                    f.check((Float.floatToRawIntBits(v) < 0) == d.negative(), at + " sign"); // covers -0
                }
            }
            if (d.kind() == RefFormat.Kind.NAN) {
                f.check(Float.isNaN(p.round(v)) && Double.isNaN(p.round((double) v)), at + " NaN must stay NaN");
                continue;
            }
            f.check(Float.floatToRawIntBits(p.round(v)) == Float.floatToRawIntBits(v), at + " round(float) moved it");
            f.check(Double.doubleToRawLongBits(p.round((double) v)) == Double.doubleToRawLongBits(v),
                    at + " round(double) moved it");
            f.check(p.toBits(v) == b, at + " toBits gave 0x" + Integer.toHexString(p.toBits(v)));
        }
        f.assertNone();
    }

    /**
     * For each pair of adjacent values (and the pair max / first value past max), probes the midpoint
     * and the nearest floats and doubles on either side of it, with both signs.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void roundsToNearestEvenAtEveryBoundary(Precision p, RefFormat ref) {
        Failures f = new Failures();
        int probes = 0;
        for (int i = 0; i + 1 < ref.ladder.size(); i++) {
            BigDecimal mid = ref.ladder.get(i).value().add(ref.ladder.get(i + 1).value())
                    .divide(BigDecimal.valueOf(2));
            float midF = mid.floatValue();
            double midD = mid.doubleValue();
            f.check(new BigDecimal(midF).compareTo(mid) == 0, "midpoint " + mid + " not a float");
            for (int s : new int[] {1, -1}) {
                for (float x : new float[] {midF, Math.nextDown(midF), Math.nextUp(midF)}) {
                    x *= s;
                    int want = ref.expectedBits(new BigDecimal(x), s < 0, false);
                    float wantF = ref.expectedFloat(want);
                    String at = p.id() + " round(" + x + "f) = " + p.round(x) + ", expected " + wantF;
                    f.check(p.toBits(x) == want, at + " bits 0x" + Integer.toHexString(p.toBits(x)));
                    f.check(sameFloat(p.round(x), wantF), at);
                    probes++;
                }
                // Doubles sit far closer to the midpoint than any float: only a single rounding gets these.
                for (double x : new double[] {Math.nextDown(midD), Math.nextUp(midD)}) {
                    x *= s;
                    float wantF = ref.expectedFloat(ref.expectedBits(new BigDecimal(x), s < 0, false));
                    f.check(sameFloat((float) p.round(x), wantF), p.id() + " round(" + x + ") = " + p.round(x)
                            + ", expected " + wantF);
                    probes++;
                }
            }
        }
        f.assertNone();
        assertTrue(probes >= 10 * (ref.ladder.size() - 1));
    }

    static boolean sameFloat(float a, float b) {
        return Float.isNaN(a) ? Float.isNaN(b) : Float.floatToRawIntBits(a) == Float.floatToRawIntBits(b);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void ladderCoversAllNonNegativeFiniteValues(Precision p, RefFormat ref) {
        // Sanity of the oracle itself: strictly ascending, ending in max then the overflow step.
        for (int i = 1; i < ref.ladder.size(); i++) {
            assertTrue(ref.ladder.get(i - 1).value().compareTo(ref.ladder.get(i).value()) < 0);
        }
        BigDecimal max = ref.ladder.get(ref.ladder.size() - 2).value();
        assertEquals(0, max.compareTo(new BigDecimal(p.maxFinite())), p.id());
    }
}
