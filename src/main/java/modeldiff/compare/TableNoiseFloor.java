package modeldiff.compare;

import modeldiff.model.BadInputException;
import modeldiff.numeric.Precision;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A noise floor from a fixed table: one log-L2 upper bound per precision, the same for every probe.
 * <p>
 * The {@link #provisionalDefault()} table's numbers are PLACEHOLDERS (docs/metrics.md, "Noise floor") until the
 * reduced-precision pass provides measured per-model floors. They err loose: a floor set too tight calls rounding a
 * bug, which costs more trust than a missed subtle deviation.
 */
public final class TableNoiseFloor implements NoiseFloor {
    private final Map<Precision, Double> bounds;
    private final String source;
    private final boolean provisional;

    public TableNoiseFloor(Map<Precision, Double> bounds, String source, boolean provisional) {
        Map<Precision, Double> m = new EnumMap<>(Precision.class);
        bounds.forEach((k, v) -> {
            if (!Double.isFinite(v)) throw new IllegalArgumentException("noise floor for " + k.id() + " must be finite");
            m.put(k, v);
        });
        this.bounds = Collections.unmodifiableMap(m);
        this.source = source;
        this.provisional = provisional;
    }

    /** The shipped default. Provisional: see the class comment. */
    public static TableNoiseFloor provisionalDefault() {
        Map<Precision, Double> m = new EnumMap<>(Precision.class);
        m.put(Precision.FP64, -12.0);
        m.put(Precision.FP32, -5.5);
        m.put(Precision.FP16, -2.5);
        m.put(Precision.BF16, -1.6);
        return new TableNoiseFloor(m, "provisional table (float64 −12, float32 −5.5, float16 −2.5, bfloat16 −1.6); "
                + "placeholders until measured per-model floors exist", true);
    }

    public Map<Precision, Double> bounds() {
        return bounds;
    }

    @Override
    public double upperBound(Precision precision, String probe) {
        Double b = bounds.get(precision);
        if (b == null)
            throw new BadInputException("no noise floor for precision " + precision.id() + "; known: "
                    + bounds.keySet().stream().map(Precision::id).collect(Collectors.joining(", ")));
        return b;
    }

    @Override
    public String describe() {
        return source;
    }

    @Override
    public boolean provisional() {
        return provisional;
    }
}
