package modeldiff.tokenizer;

import java.util.Collection;
import java.util.Map;

/** Python's json.dumps(x, ensure_ascii=False[, indent=n]) for plain data: ", " and ": " separators, no sorting. */
final class PyJson {
    private PyJson() {
    }

    static String dumps(Object o, Integer indent) {
        StringBuilder b = new StringBuilder();
        write(b, o, indent, 0);
        return b.toString();
    }

    private static void write(StringBuilder b, Object o, Integer indent, int level) {
        if (o == null) b.append("null");
        else if (o instanceof Boolean v) b.append(v ? "true" : "false");
        else if (o instanceof Double || o instanceof Float) b.append(pyFloat(((Number) o).doubleValue()));
        else if (o instanceof Number n) b.append(n);
        else if (o instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                b.append("{}");
                return;
            }
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) b.append(indent == null ? ", " : ",");
                newline(b, indent, level + 1);
                string(b, String.valueOf(e.getKey()));
                b.append(": ");
                write(b, e.getValue(), indent, level + 1);
                first = false;
            }
            newline(b, indent, level);
            b.append('}');
        } else if (o instanceof Collection<?> c) {
            if (c.isEmpty()) {
                b.append("[]");
                return;
            }
            b.append('[');
            boolean first = true;
            for (Object x : c) {
                if (!first) b.append(indent == null ? ", " : ",");
                newline(b, indent, level + 1);
                write(b, x, indent, level + 1);
                first = false;
            }
            newline(b, indent, level);
            b.append(']');
        } else string(b, o.toString());
    }

    private static void newline(StringBuilder b, Integer indent, int level) {
        if (indent == null) return;
        b.append('\n');
        b.append(" ".repeat(indent * level));
    }

    private static String pyFloat(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        return Double.toString(d);
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        b.append('"');
    }
}
