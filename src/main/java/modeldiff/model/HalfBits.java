package modeldiff.model;

/** IEEE 754 binary16 bits to float, exactly (every half is a float). Java 17 has no Float.float16ToFloat. */
final class HalfBits {
    private HalfBits() {
    }

    static float toFloat(int h) {
        int sign = (h >>> 15) & 1;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        float mag;
        if (exp == 0) {
            mag = mant * 0x1p-24f; // subnormal: mant * 2^-14 * 2^-10
        } else if (exp == 31) {
            mag = mant == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        } else {
            mag = Float.intBitsToFloat(((exp - 15 + 127) << 23) | (mant << 13));
        }
        return sign == 1 ? -mag : mag;
    }

    /** float → binary16 bits, round to nearest even, overflow to infinity, subnormals kept. */
    static int fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        if (Float.isNaN(f)) return sign | 0x7e00;
        float a = Math.abs(f);
        if (a >= 65520f) return sign | 0x7c00; // 65520 is the midpoint to the next binade: ties go to infinity
        if (a < 0x1p-14f) {
            // subnormal: value / 2^-24, rounded to nearest even integer
            return sign | (int) Math.rint(a * 0x1p24f);
        }
        int ab = bits & 0x7fffffff;
        int exp = (ab >>> 23) - 127 + 15;
        int mant = ab & 0x7fffff;
        int half = (exp << 10) | (mant >>> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1)) half++;
        return sign | half;
    }
}
