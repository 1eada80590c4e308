package modeldiff.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Typed access to config.json with the family's HF defaults. Every default taken is recorded, so a user can see
 * which behaviour came from the release and which from an assumption ({@code modeldiff info}).
 */
final class ConfigReader {
    private final Path file;
    private final JsonNode root;
    private final Map<String, Object> defaults;
    final List<String> defaultsUsed = new ArrayList<>();

    ConfigReader(Path file, JsonNode root, Map<String, Object> defaults) {
        this.file = file;
        this.root = root;
        this.defaults = defaults;
    }

    /** The first of the keys present with a non-null value, else null. */
    JsonNode node(String... keys) {
        for (String k : keys) {
            JsonNode n = root.get(k);
            if (n != null && !n.isNull()) return n;
        }
        return null;
    }

    /** Whether the key is present with an explicit JSON null (HF's None, as opposed to its default). */
    boolean isNull(String key) {
        JsonNode n = root.get(key);
        return n != null && n.isNull();
    }

    /** Whether the family has a default for the key (a number, string or boolean, not None). */
    boolean hasDefault(String key) {
        Object d = defaults.get(key);
        return d != null && d != Family.NONE;
    }

    boolean has(String... keys) {
        return node(keys) != null;
    }

    BadInputException bad(String key, String reason) {
        return BadInputException.at(file, "key '" + key + "'", reason);
    }

    /** Required positive integer with no default (sizes must match the weights, so guessing them helps nobody). */
    int requiredSize(String... keys) {
        JsonNode n = node(keys);
        if (n == null) throw bad(keys[0], "missing, and it has no default (it must match the weights)");
        return positive(keys[0], n);
    }

    int positive(String key, JsonNode n) {
        if (!n.isIntegralNumber() || !n.canConvertToInt()) throw bad(key, "expected an integer, got " + abbreviate(n));
        int v = n.asInt();
        if (v <= 0) throw bad(key, "must be positive, got " + v);
        return v;
    }

    /** Positive integer, the family default when absent; a default of None gives {@code fallback}. */
    int sizeOr(String key, int fallback) {
        JsonNode n = node(key);
        if (n != null) return positive(key, n);
        Object d = defaults.get(key);
        if (d instanceof Number num) {
            defaultsUsed.add(key + "=" + num + " (HF default)");
            return num.intValue();
        }
        return fallback;
    }

    double number(String key) {
        JsonNode n = node(key);
        if (n != null) {
            if (!n.isNumber()) throw bad(key, "expected a number, got " + abbreviate(n));
            if (!Double.isFinite(n.asDouble())) throw bad(key, "must be finite, got " + abbreviate(n));
            return n.asDouble();
        }
        Object d = defaults.get(key);
        if (d instanceof Number num) {
            defaultsUsed.add(key + "=" + num + " (HF default)");
            return num.doubleValue();
        }
        throw bad(key, "missing, and it has no default");
    }

    /** A number that may be null (soft-caps, windows); NaN for null/absent-with-null-default. */
    double optionalNumber(String key) {
        JsonNode n = root.get(key);
        if (n != null) {
            if (n.isNull()) return Double.NaN;
            if (!n.isNumber()) throw bad(key, "expected a number or null, got " + abbreviate(n));
            if (!Double.isFinite(n.asDouble())) throw bad(key, "must be finite, got " + abbreviate(n));
            return n.asDouble();
        }
        Object d = defaults.get(key);
        if (d instanceof Number num) {
            defaultsUsed.add(key + "=" + num + " (HF default)");
            return num.doubleValue();
        }
        if (d == Family.NONE) defaultsUsed.add(key + "=null (HF default)");
        return Double.NaN;
    }

    boolean bool(String key) {
        JsonNode n = node(key);
        if (n != null) {
            if (!n.isBoolean()) throw bad(key, "expected true or false, got " + abbreviate(n));
            return n.asBoolean();
        }
        Object d = defaults.get(key);
        if (d instanceof Boolean b) {
            defaultsUsed.add(key + "=" + b + " (HF default)");
            return b;
        }
        return false;
    }

    /** First present string among keys, else the default of the first key that has one, else null. */
    String string(String... keys) {
        for (String k : keys) {
            JsonNode n = node(k);
            if (n != null) {
                if (!n.isTextual()) throw bad(k, "expected a string, got " + abbreviate(n));
                return n.asText();
            }
        }
        for (String k : keys) {
            Object d = defaults.get(k);
            if (d instanceof String s) {
                defaultsUsed.add(k + "=" + s + " (HF default)");
                return s;
            }
        }
        return null;
    }

    /** Token ids: an int, a list of ints, or null. */
    List<Integer> tokenIds(String key) {
        JsonNode n = root.get(key);
        List<Integer> out = new ArrayList<>();
        if (n == null) {
            Object d = defaults.get(key);
            if (d instanceof Number num) {
                defaultsUsed.add(key + "=" + num + " (HF default)");
                out.add(num.intValue());
            }
            return out;
        }
        if (n.isNull()) return out;
        if (n.isIntegralNumber() && n.canConvertToInt()) {
            out.add(n.asInt());
            return out;
        }
        if (n.isArray()) {
            for (JsonNode e : n) {
                if (!e.isIntegralNumber() || !e.canConvertToInt()) throw bad(key, "expected token ids, got " + abbreviate(n));
                out.add(e.asInt());
            }
            return out;
        }
        throw bad(key, "expected a token id or a list of them, got " + abbreviate(n));
    }

    static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() > 60 ? s.substring(0, 57) + "..." : s;
    }
}
