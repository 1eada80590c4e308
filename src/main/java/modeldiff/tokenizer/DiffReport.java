package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.mustachejava.DefaultMustacheFactory;
import com.github.mustachejava.Mustache;

import java.io.StringWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** A {@link TokenizerDiff.Result} as text, JSON (docs/tokenizers.md) and HTML (escaped mustache, no scripts, CSP). */
public final class DiffReport {
    public static final String TEMPLATE = "modeldiff/report/tokens.mustache";
    private static final ObjectMapper JSON = new ObjectMapper();

    private DiffReport() {
    }

    public static String text(TokenizerDiff.Result r) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "%s vs %s: %d of %d strings agree (%.1f%%); pieces agree on %d%n", r.labelA(), r.labelB(),
                r.agreeIds(), r.total(), 100 * r.share(), r.agreePieces()));
        r.byCategory().forEach((k, t) -> {
            if (t.agree() < t.total()) b.append(String.format(Locale.ROOT, "  %-16s %d of %d agree%n", k, t.agree(), t.total()));
        });
        for (TokenizerDiff.Mismatch m : r.mismatches()) {
            b.append("  [").append(m.category()).append("] ").append(quote(m.text())).append('\n');
            b.append("    ").append(r.labelA()).append(": ").append(pairs(m.a())).append('\n');
            b.append("    ").append(r.labelB()).append(": ").append(pairs(m.b())).append('\n');
        }
        return b.toString();
    }

    public static String json(TokenizerDiff.Result r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("a", r.labelA()).put("b", r.labelB()).put("strings", r.total()).put("agree", r.agreeIds())
                .put("share", r.share()).put("pieces_agree", r.agreePieces());
        ObjectNode cats = o.putObject("categories");
        r.byCategory().forEach((k, t) -> cats.putObject(k).put("strings", t.total()).put("agree", t.agree()));
        ArrayNode ms = o.putArray("mismatches");
        for (TokenizerDiff.Mismatch m : r.mismatches()) {
            ObjectNode x = ms.addObject().put("category", m.category()).put("text", m.text()).put("first_difference", m.firstDifference());
            side(x.putObject("a"), m.a());
            side(x.putObject("b"), m.b());
        }
        return o.toPrettyString() + "\n";
    }

    public static String html(TokenizerDiff.Result r, String title) {
        Map<String, Object> scope = new LinkedHashMap<>();
        scope.put("title", title);
        scope.put("summary", String.format(Locale.ROOT, "%d of %d strings agree (%.1f%%); pieces agree on %d.", r.agreeIds(), r.total(),
                100 * r.share(), r.agreePieces()));
        scope.put("a", r.labelA());
        scope.put("b", r.labelB());
        List<Map<String, Object>> cats = new ArrayList<>();
        r.byCategory().forEach((k, t) -> cats.add(Map.of("name", k, "agree", t.agree(), "total", t.total(), "bad", t.agree() < t.total())));
        scope.put("categories", cats);
        List<Map<String, Object>> ms = new ArrayList<>();
        for (TokenizerDiff.Mismatch m : r.mismatches())
            ms.add(Map.of("category", m.category(), "text", quote(m.text()), "a", pairs(m.a()), "b", pairs(m.b()), "at", m.firstDifference()));
        scope.put("mismatches", ms);
        scope.put("hasMismatches", !ms.isEmpty());
        Mustache m = new DefaultMustacheFactory().compile(TEMPLATE);
        StringWriter w = new StringWriter();
        m.execute(w, scope);
        return w.toString();
    }

    private static void side(ObjectNode o, Encoded e) {
        ArrayNode ids = o.putArray("ids");
        for (int id : e.ids()) ids.add(id);
        ArrayNode p = o.putArray("pieces");
        e.pieces().forEach(p::add);
    }

    static String pairs(Encoded e) {
        StringBuilder b = new StringBuilder();
        int[] ids = e.ids();
        for (int i = 0; i < ids.length; i++) b.append(i == 0 ? "" : " ").append(ids[i]).append(':').append(quote(e.pieces().get(i)));
        return b.toString();
    }

    /** A string as it appears in a finding: JSON-quoted, so whitespace and control characters show. */
    public static String quoteForMessage(String s) {
        return quote(s);
    }

    static String quote(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return s;
        }
    }
}
