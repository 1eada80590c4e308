package modeldiff.tokenizer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The Python methods chat templates call on strings, dicts and lists ({@code content.strip()},
 * {@code m.items()}, {@code s.split('</think>')}...), written here so that no Java method is ever reachable from a
 * template. Anything else is refused.
 */
final class PyMethods {
    private PyMethods() {
    }

    static Object call(Object base, String name, Object[] a) {
        if (base instanceof String s) return string(s, name, a);
        if (base instanceof Map<?, ?> m) return dict(m, name, a);
        if (base instanceof List<?> l) return list(l, name, a);
        throw new TemplateAbort("chat template: method '" + name + "' of a " + TemplateSandbox.kind(base) + " is not allowed");
    }

    private static Object string(String s, String name, Object[] a) {
        return switch (name) {
            case "strip" -> rstrip(lstrip(s, chars(a)), chars(a));
            case "lstrip" -> lstrip(s, chars(a));
            case "rstrip" -> rstrip(s, chars(a));
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "startswith" -> anyOf(a, 0, p -> s.startsWith(p));
            case "endswith" -> anyOf(a, 0, p -> s.endsWith(p));
            case "split" -> split(s, a.length > 0 ? str(a[0]) : null, a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "rsplit" -> rsplit(s, a.length > 0 ? str(a[0]) : null, a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "splitlines" -> splitlines(s);
            case "replace" -> replace(s, str(arg(a, 0)), str(arg(a, 1)), a.length > 2 ? ((Number) a[2]).intValue() : -1);
            case "join" -> join(s, arg(a, 0));
            case "find" -> (long) s.indexOf(str(arg(a, 0)));
            case "rfind" -> (long) s.lastIndexOf(str(arg(a, 0)));
            case "count" -> count(s, str(arg(a, 0)));
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
            case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            case "islower" -> s.equals(s.toLowerCase(Locale.ROOT)) && !s.equals(s.toUpperCase(Locale.ROOT));
            case "isupper" -> s.equals(s.toUpperCase(Locale.ROOT)) && !s.equals(s.toLowerCase(Locale.ROOT));
            default -> throw new TemplateAbort("chat template: string method '" + name + "' is not allowed");
        };
    }

    private static Object dict(Map<?, ?> m, String name, Object[] a) {
        return switch (name) {
            case "items" -> {
                List<List<Object>> out = new ArrayList<>();
                for (Map.Entry<?, ?> e : m.entrySet()) out.add(List.of(e.getKey(), e.getValue() == null ? "" : e.getValue()));
                yield out;
            }
            case "keys" -> new ArrayList<>(m.keySet());
            case "values" -> new ArrayList<>(m.values());
            case "get" -> m.containsKey(arg(a, 0)) ? m.get(a[0]) : (a.length > 1 ? a[1] : null);
            default -> throw new TemplateAbort("chat template: dict method '" + name + "' is not allowed");
        };
    }

    private static Object list(List<?> l, String name, Object[] a) {
        return switch (name) {
            case "index" -> {
                int i = l.indexOf(arg(a, 0));
                if (i < 0) throw new TemplateAbort("chat template: list.index: value not in list");
                yield (long) i;
            }
            case "count" -> l.stream().filter(x -> java.util.Objects.equals(x, a.length > 0 ? a[0] : null)).count();
            default -> throw new TemplateAbort("chat template: list method '" + name + "' is not allowed (templates are immutable)");
        };
    }

    private static Object arg(Object[] a, int i) {
        if (a.length <= i) throw new TemplateAbort("chat template: missing argument " + (i + 1));
        return a[i];
    }

    private static String str(Object o) {
        return o == null ? "None" : o.toString();
    }

    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : a[0].toString();
    }

    private static boolean strip(int c, String chars) {
        return chars == null ? Character.isWhitespace(c) || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x1f || c == 0x85 || c == 0xa0
                || Character.isSpaceChar(c) : chars.indexOf(c) >= 0;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strip(s.codePointAt(i), chars)) i += Character.charCount(s.codePointAt(i));
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strip(s.codePointBefore(j), chars)) j -= Character.charCount(s.codePointBefore(j));
        return s.substring(0, j);
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder();
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevCased = Character.isLetter(c);
        }
        return b.toString();
    }

    private static boolean anyOf(Object[] a, int i, java.util.function.Predicate<String> p) {
        Object x = arg(a, i);
        if (x instanceof Collection<?> c) return c.stream().anyMatch(e -> p.test(str(e)));
        return p.test(str(x));
    }

    private static List<String> split(String s, String sep, int max) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            String t = s.strip();
            if (t.isEmpty()) return out;
            String[] parts = max < 0 ? t.split("\\s+") : t.split("\\s+", max + 1);
            return new ArrayList<>(List.of(parts));
        }
        if (sep.isEmpty()) throw new TemplateAbort("chat template: split: empty separator");
        int from = 0, n = 0;
        while (max < 0 || n < max) {
            int k = s.indexOf(sep, from);
            if (k < 0) break;
            out.add(s.substring(from, k));
            from = k + sep.length();
            n++;
        }
        out.add(s.substring(from));
        return out;
    }

    private static List<String> rsplit(String s, String sep, int max) {
        if (sep == null || max < 0) return split(s, sep, max);
        List<String> out = new ArrayList<>();
        int end = s.length(), n = 0;
        while (n < max) {
            int k = s.lastIndexOf(sep, end - sep.length());
            if (k < 0) break;
            out.add(0, s.substring(k + sep.length(), end));
            end = k;
            n++;
        }
        out.add(0, s.substring(0, end));
        return out;
    }

    private static String replace(String s, String from, String to, int count) {
        if (count < 0) return s.replace(from, to);
        StringBuilder b = new StringBuilder();
        int i = 0, n = 0;
        while (n < count) {
            int k = s.indexOf(from, i);
            if (k < 0) break;
            b.append(s, i, k).append(to);
            i = k + from.length();
            n++;
        }
        return b.append(s.substring(i)).toString();
    }

    private static String join(String sep, Object items) {
        if (!(items instanceof Collection<?> c)) throw new TemplateAbort("chat template: join: expected a list");
        StringBuilder b = new StringBuilder();
        boolean first = true;
        for (Object o : c) {
            if (!first) b.append(sep);
            b.append(str(o));
            first = false;
        }
        return b.toString();
    }

    /** Python's str.splitlines(): no empty last piece after a final line break. */
    private static List<String> splitlines(String s) {
        List<String> out = new ArrayList<>(List.of(s.split("\\r\\n|\\r|\\n", -1)));
        if (!out.isEmpty() && out.get(out.size() - 1).isEmpty()) out.remove(out.size() - 1);
        return out;
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) return s.length() + 1L;
        long n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) n++;
        return n;
    }
}
