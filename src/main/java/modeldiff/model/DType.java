package modeldiff.model;

import java.util.Locale;

/** Element types a safetensors file may declare. Only the floating types can hold weights or probes. */
public enum DType {
    F64(8, true), F32(4, true), F16(2, true), BF16(2, true),
    F8_E4M3(1, false), F8_E5M2(1, false),
    I64(8, false), I32(4, false), I16(2, false), I8(1, false), U8(1, false), BOOL(1, false);

    public final int bytes;
    /** True when we can widen this type to float64 (the types model weights and traces use). */
    public final boolean decodable;

    DType(int bytes, boolean decodable) {
        this.bytes = bytes;
        this.decodable = decodable;
    }

    public static DType parse(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The torch dtype name HF configs use for this storage type ("bfloat16", ...), or the enum name. */
    public String torchName() {
        return switch (this) {
            case F64 -> "float64";
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> name().toLowerCase(Locale.ROOT);
        };
    }
}
