package modeldiff.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * The built-in strings two tokenizers are diffed on: the places tokenizers are known to disagree (SentencePiece's
 * leading space, whitespace runs the pre-tokenizer splits differently, digit grouping, scripts outside the training
 * data, emoji and ZWJ sequences that need byte fallback, special-token strings inside text). Deterministic.
 */
public final class DiffCorpus {
    private DiffCorpus() {
    }

    /** One string and the category it stands for. */
    public record Entry(String category, String text) {
    }

    private static final String[][] BASE = {
            {"code", "def f(x):\n    return x + 1\n"},
            {"code", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}"},
            {"code", "if __name__ == \"__main__\":\n    main()"},
            {"code", "const x = {a: 1, 'b': [2, 3]};"},
            {"code", "SELECT id, name FROM users WHERE age >= 18;"},
            {"code", "#include <stdio.h>\nint main(void) { return 0; }"},
            {"code", "x->y.z[0]++; // comment"},
            {"code", "lambda s: s.strip().lower()"},
            {"whitespace", "a  b   c    d"},
            {"whitespace", "word        word"},
            {"whitespace", "   "},
            {"whitespace", " "},
            {"whitespace", "\u00a0non-breaking\u00a0space"},
            {"tabs", "\tindented"},
            {"tabs", "a\tb\t\tc"},
            {"tabs", "\t\t\t"},
            {"newlines", "line one\nline two"},
            {"newlines", "para\n\npara"},
            {"newlines", "windows\r\nline"},
            {"newlines", "\n\n\n"},
            {"newlines", "end\n"},
            {"digits", "1"},
            {"digits", "12"},
            {"digits", "123"},
            {"digits", "1234"},
            {"digits", "1234567890"},
            {"digits", "3.14159265"},
            {"digits", "1,000,000"},
            {"digits", "2026-12-06"},
            {"digits", "0x7fff 1e-5 -42"},
            {"english", "The quick brown fox jumps over the lazy dog."},
            {"english", "Hello"},
            {"english", "hello world"},
            {"english", "It's, they're, we'll, I'd"},
            {"english", "HELLO World"},
            {"accents", "café naïve résumé Zürich"},
            {"accents", "ﬁ ﬂ Ⅻ ① ｆｕｌｌ"},
            {"cjk", "日本語のテキスト"},
            {"cjk", "中文分词测试"},
            {"cjk", "한국어 문장"},
            {"arabic", "مرحبا بالعالم"},
            {"arabic", "السلام عليكم ورحمة الله"},
            {"devanagari", "नमस्ते दुनिया"},
            {"devanagari", "संस्कृतम् हिन्दी"},
            {"emoji", "🙂"},
            {"emoji", "👍🏽 thumbs"},
            {"emoji", "👩‍💻 coder"},
            {"emoji", "👨‍👩‍👧‍👦"},
            {"emoji", "🏳️‍🌈 🇫🇷"},
            {"leading space", " hello"},
            {"leading space", "  two spaces"},
            {"leading space", " 42"},
            {"trailing space", "hello "},
            {"trailing space", "hello  "},
            {"trailing space", "end.\n "},
    };

    private static final String[] GENERIC_SPECIALS = {"<s>", "</s>", "<unk>", "<pad>", "<|endoftext|>", "<|im_start|>",
            "<|begin_of_text|>", "<|eot_id|>", "[INST]", "<bos>", "<eos>"};

    /** The built-in strings, with the release's own special tokens inside text added. */
    public static List<Entry> builtin(List<String> specialTokens) {
        List<Entry> out = new ArrayList<>();
        for (String[] e : BASE) out.add(new Entry(e[0], e[1]));
        List<String> specials = new ArrayList<>(specialTokens);
        for (String s : GENERIC_SPECIALS) if (!specials.contains(s)) specials.add(s);
        for (String s : specials) {
            out.add(new Entry("special in text", s));
            out.add(new Entry("special in text", "before " + s + " after"));
            out.add(new Entry("special in text", s + "Hello"));
        }
        // Mixed: each category's first string glued to the next one's, so boundaries between scripts are covered too.
        for (int i = 0; i + 1 < BASE.length; i += 3) out.add(new Entry("mixed", BASE[i][1] + " " + BASE[i + 1][1]));
        return out;
    }
}
