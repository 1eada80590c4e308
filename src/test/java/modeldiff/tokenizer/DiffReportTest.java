package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tokenizer diff's reports: strings from a release are escaped, the JSON carries the counts and mismatches. */
class DiffReportTest {
    /** Two fake tokenizers: one splits on spaces, the other by characters; both are deterministic. */
    static TextTokenizer fake(boolean chars) {
        return new TextTokenizer() {
            @Override
            public Encoded encode(String text, boolean addSpecialTokens) {
                List<String> pieces = chars ? text.chars().mapToObj(c -> String.valueOf((char) c)).toList() : List.of(text.split(" ", -1));
                return new Encoded(pieces.stream().mapToInt(String::hashCode).toArray(), pieces);
            }

            @Override
            public int tokenId(String token) {
                return token.hashCode();
            }

            @Override
            public String source() {
                return chars ? "chars" : "words";
            }

            @Override
            public void close() {
            }
        };
    }

    @Test
    void htmlEscapesEverythingFromTheRelease() {
        List<DiffCorpus.Entry> corpus = List.of(new DiffCorpus.Entry("evil", "<script>alert(1)</script>"), new DiffCorpus.Entry("ok", "a"));
        TokenizerDiff.Result r = TokenizerDiff.diff(fake(false), "<b>a</b>", fake(true), "b", corpus, 5);
        assertEquals(1, r.agreeIds(), "the one-character string agrees");
        String html = DiffReport.html(r, "<title-injection>");
        assertFalse(html.contains("<script>"), html);
        assertFalse(html.contains("<b>a</b>"), html);
        assertTrue(html.contains("&lt;script&gt;"), html);
        assertTrue(html.contains("Content-Security-Policy"), html);
    }

    @Test
    void jsonCarriesCountsAndMismatches() throws Exception {
        List<DiffCorpus.Entry> corpus = List.of(new DiffCorpus.Entry("x", "ab cd"), new DiffCorpus.Entry("x", "q"));
        TokenizerDiff.Result r = TokenizerDiff.diff(fake(false), "words", fake(true), "chars", corpus, 5);
        JsonNode j = new ObjectMapper().readTree(DiffReport.json(r));
        assertEquals(2, j.get("strings").asInt());
        assertEquals(1, j.get("agree").asInt());
        assertEquals("ab cd", j.get("mismatches").get(0).get("text").asText());
        assertEquals(0, j.get("mismatches").get(0).get("first_difference").asInt());
        assertEquals(2, j.get("mismatches").get(0).get("a").get("ids").size());
        assertEquals(5, j.get("mismatches").get(0).get("b").get("pieces").size());
        assertEquals(Map.of("strings", 2, "agree", 1), new ObjectMapper().convertValue(j.get("categories").get("x"), Map.class));
    }

    @Test
    void builtinCorpusCoversTheIssuesCategories() {
        List<String> cats = DiffCorpus.builtin(List.of("<|x|>")).stream().map(DiffCorpus.Entry::category).distinct().toList();
        for (String c : List.of("code", "whitespace", "tabs", "newlines", "digits", "cjk", "arabic", "devanagari", "emoji",
                "special in text", "leading space", "trailing space"))
            assertTrue(cats.contains(c), c);
        assertTrue(DiffCorpus.builtin(List.of("<|x|>")).stream().anyMatch(e -> e.text().equals("before <|x|> after")));
        assertTrue(DiffCorpus.builtin(List.of()).stream().anyMatch(e -> e.text().contains("\u200d")), "a ZWJ sequence");
    }
}
