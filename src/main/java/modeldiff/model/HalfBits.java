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
}
