package modeldiff.numeric;

import org.apache.commons.math3.special.Erf;

import java.util.Locale;

/**
 * The activation functions LLM releases name in their configs, in float64. Several config names map to the same
 * function (HF's ACT2FN table: "gelu_new", "gelu_pytorch_tanh" and "gelu_fast" are all the tanh approximation).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/activations.py
 */
public enum Activation {
    /** x·Φ(x) with the exact normal CDF (erf). */
    GELU_EXACT,
    /** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), Hendrycks & Gimpel's approximation. */
    GELU_TANH,
    /** x·sigmoid(x), a.k.a. swish. */
    SILU,
    /** max(0, x)², Primer / Nemotron. */
    RELU2,
    RELU;

    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);
    private static final double INV_SQRT_2 = 1.0 / Math.sqrt(2.0);

    public double apply(double x) {
        return switch (this) {
            case GELU_EXACT -> 0.5 * x * (1.0 + Erf.erf(x * INV_SQRT_2));
            case GELU_TANH -> 0.5 * x * (1.0 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
            case SILU -> x / (1.0 + Math.exp(-x));
            case RELU2 -> x > 0 ? x * x : 0.0;
            case RELU -> x > 0 ? x : 0.0;
        };
    }

    /** Maps a config's activation name as HF's ACT2FN does; null when HF would not know it either. */
    public static Activation fromConfigName(String name) {
        if (name == null) return null;
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "gelu" -> GELU_EXACT;
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_tanh", "gelu_accurate" -> GELU_TANH;
            case "silu", "swish" -> SILU;
            case "relu2", "relu_squared" -> RELU2;
            case "relu" -> RELU;
            default -> null;
        };
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }
}
