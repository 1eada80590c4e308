package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;
import modeldiff.model.BadInputException;
import modeldiff.tokenizer.DiffCorpus;
import modeldiff.tokenizer.Encoded;
import modeldiff.tokenizer.PreTokenizerCheck;
import modeldiff.tokenizer.ReleaseTokenizer;
import modeldiff.tokenizer.TokenizerDiff;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static modeldiff.lint.Severity.WARNING;

/** Rules that load the release's tokenizer files: fast vs slow, doubled BOS, untrained added tokens, GPT-2's regex. */
final class TokenizerFileRules {
    /** Mismatches named in a finding's evidence. */
    static final int SHOW = 3;

    private TokenizerFileRules() {
    }

    static void run(LintContext c) {
        if (!ReleaseTokenizer.has(c.dir)) return;
        try (ReleaseTokenizer t = ReleaseTokenizer.open(c.dir)) {
            if (t.hasFast() && t.hasSlow()) fastSlow(c, t);
            if (t.settings().chatTemplate() != null) bosDoubled(c, t);
            if (t.hasFast()) {
                flagsIgnored(c, t);
                untrainedAdded(c, t);
                pretokenizer(c, t.fast().json());
            }
        } catch (BadInputException | UnsatisfiedLinkError | IllegalStateException e) {
            c.add(Rules.TOK_FILES_UNREADABLE, WARNING, "the tokenizer files cannot be loaded: " + BadInputException.oneLine(e.getMessage()),
                    "fix the tokenizer files (modeldiff tokenize shows the error)", "error", BadInputException.oneLine(e.getMessage()));
        }
    }

    /** SentencePiece never parses special-token strings inside text, so that category is left out here. */
    private static void fastSlow(LintContext c, ReleaseTokenizer t) {
        List<DiffCorpus.Entry> corpus = DiffCorpus.builtin(t.settings().specialTokens()).stream()
                .filter(e -> !e.category().equals("special in text")).toList();
        TokenizerDiff.Result r = TokenizerDiff.diff(t.fast(), "tokenizer.json", t.slow(), "tokenizer.model", corpus, SHOW);
        if (r.clean()) return;
        TokenizerDiff.Mismatch m = r.mismatches().get(0);
        List<String> cats = new ArrayList<>();
        r.byCategory().forEach((k, v) -> {
            if (v.agree() < v.total()) cats.add(k);
        });
        c.add(Rules.TOK_FAST_SLOW_MISMATCH, WARNING, "tokenizer.json and tokenizer.model disagree on " + (r.total() - r.agreeIds()) + " of "
                        + r.total() + " built-in strings (" + String.join(", ", cats) + "), e.g. " + quote(m.text()) + ": "
                        + ids(m.a()) + " vs " + ids(m.b()) + "; frameworks reading one file or the other give the model different ids",
                "ship one tokenizer, or regenerate tokenizer.json from tokenizer.model and check it (modeldiff tokens --model DIR)",
                "strings", r.total(), "agree", r.agreeIds(), "categories", cats, "first_text", m.text(),
                "fast_ids", ids(m.a()), "slow_ids", ids(m.b()));
    }

    /** Render a one-message chat, encode it as render-then-encode frameworks do: BOS twice? */
    private static void bosDoubled(LintContext c, ReleaseTokenizer t) {
        String bos = t.settings().bosToken();
        if (bos == null) return;
        int bosId = t.tokenId(bos);
        if (bosId < 0) return;
        String text = null, failure = null;
        for (List<Map<String, Object>> chat : List.of(List.of(message("user", "Hello")),
                List.of(message("system", "You are helpful."), message("user", "Hello")))) {
            try {
                text = t.renderChat(chat, true);
                break;
            } catch (BadInputException e) {
                failure = e.getMessage();   // this template may want another conversation; try the next one
            }
        }
        if (text == null) {
            // A template that refuses both conversations itself is its business; one that breaks is a finding.
            if (failure != null && !failure.startsWith("chat template raised:"))
                c.add(Rules.TOK_FILES_UNREADABLE, WARNING, "the chat template cannot be rendered: " + failure,
                        "fix the template (modeldiff tokenize --model DIR --chat FILE.json shows the error)", "error", failure);
            return;
        }
        int[] ids = t.encode(text, true).ids();
        if (ids.length >= 2 && ids[0] == bosId && ids[1] == bosId)
            c.add(Rules.TOK_BOS_DOUBLED, WARNING, "the chat template writes bos_token '" + bos + "' and the tokenizer adds BOS by default: "
                            + "apply_chat_template is right (it tokenizes without special tokens), but rendering the template and then "
                            + "encoding the text (vLLM's and llama.cpp's old paths, most hand-written code) starts with two BOS",
                    "drop {{ bos_token }} from the template, or make encoding the rendered chat use add_special_tokens=False",
                    "bos_token", bos, "bos_id", bosId, "first_ids", java.util.Arrays.toString(java.util.Arrays.copyOf(ids, Math.min(ids.length, 6))));
    }

    private static Map<String, Object> message(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    /**
     * add_bos_token / add_eos_token set in tokenizer_config.json, and tokenizer.json's post-processor doing otherwise:
     * transformers 5.17 follows tokenizer.json (measured, docs/tokenizers.md), runtimes that read the flags do not.
     */
    private static void flagsIgnored(LintContext c, ReleaseTokenizer t) {
        modeldiff.tokenizer.SpecialTokens around = modeldiff.tokenizer.SpecialTokens.observe(t.fast());
        List<String> disagree = new ArrayList<>();
        check(disagree, "add_bos_token", t.settings().addBos(), t.settings().bosToken(), around.prefixPieces());
        check(disagree, "add_eos_token", t.settings().addEos(), t.settings().eosToken(), around.suffixPieces());
        if (disagree.isEmpty()) return;
        c.add(Rules.TOK_FLAGS_IGNORED, WARNING, "tokenizer_config.json and tokenizer.json disagree: " + String.join("; ", disagree)
                        + ". transformers 5.17 follows tokenizer.json; runtimes that read the flags add other special tokens",
                "make the post-processor in tokenizer.json add what the flags say (or drop the flags)",
                "disagreements", disagree, "post_processor_adds_before", around.prefixPieces(), "post_processor_adds_after", around.suffixPieces());
    }

    private static void check(List<String> out, String flag, Boolean value, String token, List<String> added) {
        if (value == null || token == null) return;
        boolean adds = added.contains(token);
        if (value != adds)
            out.add(flag + " is " + value + " but tokenizer.json " + (adds ? "adds" : "does not add") + " '" + token + "'");
    }

    /** Added / special tokens whose embedding row weights.untrained_rows found untrained. */
    private static void untrainedAdded(LintContext c, ReleaseTokenizer t) {
        if (c.untrainedEmbeddingRows.isEmpty()) return;
        Map<Integer, String> added = new LinkedHashMap<>();
        for (JsonNode a : t.fast().json().path("added_tokens")) added.put(a.path("id").asInt(), a.path("content").asText());
        t.settings().addedTokensDecoder().forEach(added::putIfAbsent);
        String template = t.settings().chatTemplate() == null ? "" : t.settings().chatTemplate();
        List<String> used = new ArrayList<>(), unused = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        for (Map.Entry<Integer, String> e : added.entrySet()) {
            if (!c.untrainedEmbeddingRows.contains(e.getKey())) continue;
            String s = e.getValue();
            boolean inUse = s.equals(t.settings().bosToken()) || s.equals(t.settings().eosToken()) || template.contains(s);
            (inUse ? used : unused).add(s + " (" + e.getKey() + ")");
            ids.add(e.getKey());
        }
        if (ids.isEmpty()) return;
        c.add(Rules.TOK_ADDED_UNTRAINED, WARNING, (used.isEmpty() ? "" : "special tokens the model is fed ("
                        + String.join(", ", used) + ") have untrained embedding rows: prompts with them start from noise"
                        + (unused.isEmpty() ? "" : "; ")) + (unused.isEmpty() ? "" : unused.size() + " other added token(s) are untrained too ("
                        + String.join(", ", c.cap(unused).stream().map(String::valueOf).toList()) + "): harmless until a fine-tune uses them"),
                "train these rows, or set them to the mean of the trained rows before fine-tuning with them",
                "used", used, "unused", c.cap(unused), "ids", c.cap(ids), "reference", Rules.REF_LLAMA3_UNTRAINED);
    }

    private static void pretokenizer(LintContext c, JsonNode tokenizerJson) {
        PreTokenizerCheck.Result r = PreTokenizerCheck.check(tokenizerJson);
        if (r == null || !r.suspicious()) return;
        c.add(Rules.TOK_PRETOKENIZER_REGEX, WARNING, "byte-level BPE splits text with GPT-2's pattern, but " + r.unreachable() + " of "
                        + r.checked() + " vocabulary tokens cross that pattern's boundaries (e.g. " + String.join(", ", r.examples().stream().map(TokenizerFileRules::quote).toList())
                        + "): the vocabulary was built with another pattern, and these tokens can never be produced",
                "use the pre-tokenizer pattern the vocabulary was trained with (Llama 3's, for Llama-3-style vocabularies)",
                "unreachable", r.unreachable(), "checked", r.checked(), "examples", r.examples(), "reference", Rules.REF_LLAMACPP_REGEX);
    }

    private static String ids(Encoded e) {
        return java.util.Arrays.toString(e.ids());
    }

    private static String quote(String s) {
        return modeldiff.tokenizer.DiffReport.quoteForMessage(s);
    }
}
