package modeldiff.numeric;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * Test oracle written from the format definitions (IEEE 754 / OCP FP8), sharing no code with
 * {@link Precision}: exact values in BigDecimal, rounding by comparing BigDecimal distances.
 */
final class RefFormat {
    enum Kind { FINITE, INF, NAN }

    record Decoded(Kind kind, boolean negative, BigDecimal value) {}

    record Entry(int bits, BigDecimal value) {}

    static final RefFormat BF16 = new RefFormat(8, 7, false);
    static final RefFormat FP16 = new RefFormat(5, 10, false);
    static final RefFormat E4M3FN = new RefFormat(4, 3, true);
    static final RefFormat E5M2 = new RefFormat(5, 2, false);

    final int expBits, manBits, width, bias;
    final boolean finiteOnly;
    /** Non-negative finite values, ascending, then one "overflow" entry: the next binade step past max. */
    final List<Entry> ladder = new ArrayList<>();

    private RefFormat(int expBits, int manBits, boolean finiteOnly) {
        this.expBits = expBits;
        this.manBits = manBits;
        this.width = 1 + expBits + manBits;
        this.bias = (1 << (expBits - 1)) - 1;
        this.finiteOnly = finiteOnly;
        int maxBits = 0;
        for (int b = 0; b < 1 << (width - 1); b++) { // positive patterns ascend with their value
            Decoded d = decode(b);
            if (d.kind != Kind.FINITE) break;
            ladder.add(new Entry(b, d.value));
            maxBits = b;
        }
        // Rounding with an unbounded exponent: past max comes max + ulp(max), whose pattern is the
        // Inf (IEEE) or the NaN (e4m3fn) pattern. Its parity decides ties at the overflow threshold.
        BigDecimal ulpAtMax = pow2(maxExponent() - manBits);
        ladder.add(new Entry(maxBits + 1, ladder.get(ladder.size() - 1).value.add(ulpAtMax)));
    }

    int maxExponent() {
        int topField = finiteOnly ? (1 << expBits) - 1 : (1 << expBits) - 2;
        return topField - bias;
    }

    static BigDecimal pow2(int k) {
        return k >= 0 ? new BigDecimal(BigInteger.ONE.shiftLeft(k))
                : BigDecimal.ONE.divide(new BigDecimal(BigInteger.ONE.shiftLeft(-k)));
    }

    /** (-1)^s * 2^(e-bias) * 1.m for normals, (-1)^s * 2^(1-bias) * 0.m for subnormals. */
    Decoded decode(int bits) {
        boolean neg = ((bits >> (width - 1)) & 1) == 1;
        int e = (bits >> manBits) & ((1 << expBits) - 1);
        int m = bits & ((1 << manBits) - 1);
        int eAllOnes = (1 << expBits) - 1;
        if (finiteOnly) {
            if (e == eAllOnes && m == (1 << manBits) - 1) return new Decoded(Kind.NAN, neg, null);
        } else if (e == eAllOnes) {
            return new Decoded(m == 0 ? Kind.INF : Kind.NAN, neg, null);
        }
        BigInteger significand = BigInteger.valueOf(e == 0 ? m : (1L << manBits) + m);
        int scale = (e == 0 ? 1 - bias : e - bias) - manBits;
        BigDecimal v = new BigDecimal(significand).multiply(pow2(scale));
        return new Decoded(Kind.FINITE, neg, neg ? v.negate() : v);
    }

    /** The float32 with this pattern's value (every format here is a subset of float32). */
    float expectedFloat(int bits) {
        Decoded d = decode(bits);
        return switch (d.kind) {
            case NAN -> Float.NaN;
            case INF -> d.negative ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
            case FINITE -> d.negative && d.value.signum() == 0 ? -0.0f : d.value.floatValue();
        };
    }

    /** Index range [from, to) of ladder entries to compare; the whole ladder is plain brute force. */
    int nearestMagnitudeBits(BigDecimal magnitude, int from, int to) {
        Entry best = null;
        BigDecimal bestDist = null;
        for (int i = Math.max(0, from); i < Math.min(ladder.size(), to); i++) {
            Entry c = ladder.get(i);
            BigDecimal dist = c.value.subtract(magnitude).abs();
            int cmp = bestDist == null ? -1 : dist.compareTo(bestDist);
            if (cmp < 0 || (cmp == 0 && (c.bits & 1) == 0)) { // ties go to the even pattern
                best = c;
                bestDist = dist;
            }
        }
        // Beyond the overflow entry everything rounds to it.
        Entry top = ladder.get(ladder.size() - 1);
        if (magnitude.compareTo(top.value) >= 0) best = top;
        return best.bits;
    }

    /** Expected pattern for rounding a finite x (exact BigDecimal of the input) with the given sign. */
    int expectedBits(BigDecimal x, boolean negative, boolean bruteForce) {
        BigDecimal mag = x.abs();
        int from = 0, to = ladder.size();
        if (!bruteForce) { // locate by bisection, then still compare distances of the neighbours
            int lo = 0, hi = ladder.size() - 1;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (ladder.get(mid).value.compareTo(mag) < 0) lo = mid + 1; else hi = mid;
            }
            from = lo - 2;
            to = lo + 2;
        }
        int magBits = nearestMagnitudeBits(mag, from, to);
        return negative ? magBits | (1 << (width - 1)) : magBits;
    }
}
