package modeldiff.lint;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One lint result: which rule fired, how bad it is, a one-line message, the evidence (config values, tensor names,
 * token ids; JSON-serialisable values only) and a suggested fix: a fix id from {@link modeldiff.forward.Fixes} where
 * one applies (it reproduces or corrects the behaviour in a forward pass), else a sentence; null when there is none.
 */
public record Finding(String rule, Severity severity, String message, Map<String, Object> evidence, String fix) {
    public Finding {
        Objects.requireNonNull(rule);
        Objects.requireNonNull(severity);
        Objects.requireNonNull(message);
        evidence = Collections.unmodifiableMap(new LinkedHashMap<>(evidence == null ? Map.of() : evidence));
    }

    /** Evidence from alternating keys and values; null values are left out. */
    public static Map<String, Object> evidence(Object... kv) {
        if (kv.length % 2 != 0) throw new IllegalArgumentException("evidence needs key/value pairs");
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2)
            if (kv[i + 1] != null) m.put((String) kv[i], kv[i + 1]);
        return m;
    }
}
