package modeldiff.numeric;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Floating-point formats a forward pass can run in, with rounding that matches PyTorch's
 * {@code tensor.to(dtype)} bit for bit. See docs/numerics.md for the format tables and sources.
 *
 * <p>FP8 formats are storage-only helpers: values are decoded to float32 before any arithmetic.
 */
public enum Precision {
    FP64("float64", 64, 11, 52, "fp64", "f64", "double"),
    FP32("float32", 32, 8, 23, "fp32", "f32", "float", "single"),
    BF16("bfloat16", 16, 8, 7, "bf16"),
    FP16("float16", 16, 5, 10, "fp16", "f16", "half"),
    /** OCP E4M3 "fn": finite only, no infinities, a single NaN magnitude S.1111.111. */
    FP8_E4M3("float8_e4m3fn", 8, 4, 3, "fp8_e4m3fn", "fp8_e4m3", "f8e4m3fn", "e4m3fn", "e4m3"),
    FP8_E5M2("float8_e5m2", 8, 5, 2, "fp8_e5m2", "f8e5m2", "e5m2");

    private final String id;
    private final String[] aliases;
    private final int width;      // storage bits
    private final int manBits;    // stored mantissa bits (without the implicit one)
    private final int bias;
    private final int emin;       // exponent of the smallest normal
    private final boolean finiteOnly;
    private final int maxFiniteBits; // magnitude pattern of the largest finite value

    Precision(String id, int width, int expBits, int manBits, String... aliases) {
        this.id = id;
        this.aliases = aliases;
        this.width = width;
        this.manBits = manBits;
        this.bias = (1 << (expBits - 1)) - 1;
        this.emin = 1 - bias;
        this.finiteOnly = id.endsWith("fn");
        // e4m3fn gives the top exponent to normal numbers and keeps only mantissa 111 for NaN.
        this.maxFiniteBits = width > 32 ? -1
                : finiteOnly ? (1 << (width - 1)) - 2
                : (((1 << expBits) - 1) << manBits) - 1;
    }

    private static final Map<String, Precision> BY_NAME = new LinkedHashMap<>();

    static {
        for (Precision p : values()) {
            BY_NAME.put(p.id, p);
            BY_NAME.put(p.name().toLowerCase(Locale.ROOT), p);
            for (String a : p.aliases) BY_NAME.put(a, p);
        }
    }

    /** The PyTorch dtype name, e.g. "bfloat16". */
    public String id() {
        return id;
    }

    /** Accepts PyTorch ids, "torch."-prefixed ids and common short forms, case-insensitively. */
    public static Precision parse(String name) {
        if (name != null) {
            String key = name.trim().toLowerCase(Locale.ROOT);
            if (key.startsWith("torch.")) key = key.substring(6);
            Precision p = BY_NAME.get(key);
            if (p != null) return p;
        }
        StringJoiner valid = new StringJoiner("; ");
        for (Precision p : values()) valid.add(p.id + " (" + String.join(", ", p.aliases) + ")");
        throw new IllegalArgumentException("Unknown precision '" + name + "'. Valid: " + valid);
    }

    /** Storage width in bits. */
    public int bits() {
        return width;
    }

    /** Unit roundoff u = 2^-p (p counts the implicit bit); torch.finfo(dtype).eps is 2u. */
    public double epsilon() {
        return Math.scalb(1.0, -(manBits + 1));
    }

    public double maxFinite() {
        return switch (this) {
            case FP64 -> Double.MAX_VALUE;
            case FP32 -> Float.MAX_VALUE;
            default -> fromBits(maxFiniteBits);
        };
    }

    public double minNormal() {
        return Math.scalb(1.0, emin);
    }

    public double minSubnormal() {
        return Math.scalb(1.0, emin - manBits);
    }

    /** Nearest representable value, ties to even; overflow gives ±Inf (NaN for e4m3fn) as torch does. */
    public float round(float x) {
        if (this == FP64 || this == FP32) return x;
        return fromBits(encode(x));
    }

    /** Rounds the double once, straight to this format (never through float32). */
    public double round(double x) {
        if (this == FP64) return x;
        if (this == FP32) return (float) x; // Java's narrowing is one IEEE round-to-nearest-even
        return fromBits(encode(x));
    }

    /**
     * Bit pattern (in the low {@link #bits()} bits) of x rounded to this format. NaN becomes
     * torch's canonical NaN: 0x7FC0 for bfloat16 (sign dropped), sign|0x7E00 for float16,
     * sign|0x7F for both fp8 formats. torch's vectorised CPU and CUDA paths emit other NaN
     * patterns (0xFFFF, 0x7FFF), so compare NaN with isNaN, not by bits.
     */
    public int toBits(float x) {
        if (this == FP32) return Float.floatToRawIntBits(x);
        requireNarrow();
        return encode(x);
    }

    /** Decodes a bit pattern of this format to the float32 with the same value. */
    public float fromBits(int bits) {
        if (this == FP32) return Float.intBitsToFloat(bits);
        requireNarrow();
        if ((bits >>> width) != 0) {
            throw new IllegalArgumentException(id + " has " + width + " bits, got 0x" + Integer.toHexString(bits));
        }
        // bfloat16 is the top half of a float32, subnormals included.
        if (this == BF16) return Float.intBitsToFloat(bits << 16);

        int sign = (bits >>> (width - 1)) << 31;
        int exp = (bits >>> manBits) & ((1 << (width - 1 - manBits)) - 1);
        int man = bits & ((1 << manBits) - 1);
        int expMax = (1 << (width - 1 - manBits)) - 1;
        int toF32 = 23 - manBits;
        if (exp == expMax && (!finiteOnly || man == (1 << manBits) - 1)) {
            // IEEE: man == 0 is Inf, else NaN with the payload carried over. e4m3fn: only NaN reaches here.
            return Float.intBitsToFloat(sign | 0x7F800000 | (man << toF32));
        }
        if (exp != 0) return Float.intBitsToFloat(sign | ((exp - bias + 127) << 23) | (man << toF32));
        if (man == 0) return Float.intBitsToFloat(sign);
        // Subnormal here, but a normal float32 (fp16's smallest is 2^-24): renormalise on the leading one.
        int lead = 31 - Integer.numberOfLeadingZeros(man);
        int f32Exp = emin - manBits + lead + 127;
        return Float.intBitsToFloat(sign | (f32Exp << 23) | ((man ^ (1 << lead)) << (23 - lead)));
    }

    private void requireNarrow() {
        if (this == FP64) throw new UnsupportedOperationException("float64 bits do not fit an int; use Double.doubleToRawLongBits");
    }

    /**
     * Rounds a double to this format's bit pattern (BF16, FP16, FP8 only). A float argument widens
     * exactly, so one routine serves both round() overloads with a single rounding step.
     */
    private int encode(double x) {
        long b = Double.doubleToRawLongBits(x);
        int sign = (int) (b >>> 63) << (width - 1);
        if (Double.isNaN(x)) return this == BF16 ? 0x7FC0 : sign | nanMagnitude();
        if (Double.isInfinite(x)) return sign | overflowMagnitude();
        int biasedExp = (int) (b >>> 52) & 0x7FF;
        // Zero, or a double subnormal (< 2^-1022): far below half the smallest subnormal of any target.
        if (biasedExp == 0) return sign;
        int e = biasedExp - 1023;
        long sig = (b & ((1L << 52) - 1)) | (1L << 52); // 53-bit significand, value = sig * 2^(e-52)

        // The result is a multiple of 2^q; below the normal range the spacing stops shrinking (subnormals).
        int q = Math.max(e, emin) - manBits;
        int shift = q - (e - 52);
        if (shift >= 54) return sign; // x < 2^(q-1): under half the spacing, rounds to zero
        long keep = sig >>> shift;
        long rest = sig & ((1L << shift) - 1);
        long half = 1L << (shift - 1);
        if (rest > half || (rest == half && (keep & 1) == 1)) keep++;

        // Exponent field above emin, plus keep (whose implicit one bumps the field to the biased exponent).
        // A mantissa carry rolls into the exponent, and a subnormal carry lands on the smallest normal.
        long magnitude = ((long) (Math.max(e, emin) - emin) << manBits) + keep;
        if (magnitude > maxFiniteBits) return sign | overflowMagnitude();
        return sign | (int) magnitude;
    }

    private int nanMagnitude() {
        return this == FP16 ? 0x7E00 : (1 << (width - 1)) - 1;
    }

    // torch's converters: IEEE formats overflow to Inf; e4m3fn has no Inf and gives NaN (no saturation).
    private int overflowMagnitude() {
        return finiteOnly ? nanMagnitude() : maxFiniteBits + 1;
    }
}
