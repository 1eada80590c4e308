package modeldiff.lint;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static modeldiff.lint.Severity.ERROR;
import static modeldiff.lint.Severity.INFO;
import static modeldiff.lint.Severity.WARNING;

/** Rules on tokenizer_config.json and generation_config.json, when the release has them. */
final class TokenizerRules {
    private TokenizerRules() {
    }

    static void run(LintContext c) {
        if (c.tokenizerConfig != null) tokenizer(c, c.tokenizerConfig);
        if (c.generationConfig != null) generation(c, c.generationConfig);
        TokenizerFileRules.run(c);
    }

    private static void tokenizer(LintContext c, JsonNode t) {
        JsonNode addBos = t.get("add_bos_token");
        if (c.family != null && c.family.requiresBos && addBos != null && addBos.isBoolean() && !addBos.asBoolean()) {
            String template = t.path("chat_template").isTextual() ? t.get("chat_template").asText() : "";
            boolean templateAdds = template.contains("bos_token");
            c.add(Rules.TOK_ADD_BOS_DISABLED, templateAdds ? INFO : WARNING, "tokenizer_config.json sets add_bos_token false, but "
                            + c.family + " needs BOS first" + (templateAdds ? "; the chat template writes it, plain-text prompts lack it"
                            : " and nothing else adds it"), "input.add_bos", "add_bos_token", false,
                    "chat_template_writes_bos", templateAdds);
        }
        String bos = content(t.get("bos_token")), eos = content(t.get("eos_token")), pad = content(t.get("pad_token"));
        if (pad != null && pad.equals(eos))
            c.add(Rules.TOK_PAD_EQUALS_EOS, WARNING, "tokenizer pad_token '" + pad + "' is the eos_token: collators that mask padding "
                    + "mask EOS too, and fine-tunes never learn to stop", "give the tokenizer its own pad token",
                    "pad_token", pad, "eos_token", eos);
        Map<String, Integer> ids = new HashMap<>();
        List<Integer> outOfRange = new ArrayList<>();
        int vocab = c.vocabSize();
        JsonNode decoder = t.get("added_tokens_decoder");
        if (decoder != null && decoder.isObject()) {
            decoder.fields().forEachRemaining(e -> {
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    return;
                }
                String s = content(e.getValue());
                if (s != null) ids.putIfAbsent(s, id);
                if (vocab > 0 && (id < 0 || id >= vocab)) outOfRange.add(id);
            });
        }
        if (!outOfRange.isEmpty())
            c.add(Rules.TOK_OUT_OF_RANGE, ERROR, outOfRange.size() + " added token id(s) are >= vocab_size " + vocab + " (first "
                            + outOfRange.get(0) + "): the tokenizer can emit ids the embedding lacks",
                    "resize the embedding (and lm_head) or drop the tokens", "ids", c.cap(outOfRange), "count", outOfRange.size(), "vocab_size", vocab);
        if (bos != null && ids.containsKey(bos)) {
            List<Integer> cfgBos = c.tokenIds("bos_token_id");
            int id = ids.get(bos);
            if (!cfgBos.isEmpty() && !cfgBos.contains(id))
                c.add(Rules.TOK_BOS_MISMATCH, WARNING, "tokenizer bos_token '" + bos + "' is id " + id + " but config.json says bos_token_id "
                        + cfgBos, "make bos_token_id " + id + " (or fix the tokenizer)", "bos_token", bos, "tokenizer_id", id, "config_ids", cfgBos);
        }
        if (eos != null && ids.containsKey(eos)) {
            int id = ids.get(eos);
            List<Integer> cfgEos = c.tokenIds("eos_token_id");
            List<Integer> genEos = c.generationConfig == null ? List.of() : LintContext.ids(c.generationConfig.get("eos_token_id"));
            if (!cfgEos.isEmpty() && !cfgEos.contains(id)) {
                boolean inGen = genEos.contains(id);
                c.add(Rules.TOK_EOS_MISMATCH, inGen ? INFO : WARNING, "tokenizer eos_token '" + eos + "' is id " + id + " but config.json says eos_token_id "
                                + cfgEos + (inGen ? "; generation_config.json lists it, so HF generate stops, other runtimes may not"
                                : " and generation_config.json does not list it: generation will not stop at it"),
                        "add " + id + " to eos_token_id in config.json and generation_config.json",
                        "eos_token", eos, "tokenizer_id", id, "config_ids", cfgEos, "generation_ids", genEos.isEmpty() ? null : genEos);
            }
        }
    }

    private static void generation(LintContext c, JsonNode g) {
        List<Integer> cfgEos = c.tokenIds("eos_token_id"), cfgBos = c.tokenIds("bos_token_id");
        if (g.has("eos_token_id")) {
            List<Integer> genEos = LintContext.ids(g.get("eos_token_id"));
            Set<Integer> a = new LinkedHashSet<>(genEos), b = new LinkedHashSet<>(cfgEos);
            if (!a.equals(b)) {
                boolean superset = a.containsAll(b);
                c.add(Rules.GEN_EOS_MISMATCH, superset ? INFO : WARNING, "generation_config.json eos_token_id " + genEos
                                + (superset ? " extends" : " disagrees with") + " config.json eos_token_id " + cfgEos
                                + (superset ? ": HF generate stops on all of them; runtimes that read config.json only stop on fewer"
                                : ": runtimes reading one file or the other stop on different tokens"),
                        "list the same EOS ids in both files", "generation_eos", genEos, "config_eos", cfgEos);
            }
        }
        if (g.has("bos_token_id")) {
            List<Integer> genBos = LintContext.ids(g.get("bos_token_id"));
            if (!new LinkedHashSet<>(genBos).equals(new LinkedHashSet<>(cfgBos)))
                c.add(Rules.GEN_BOS_MISMATCH, WARNING, "generation_config.json bos_token_id " + genBos + " disagrees with config.json "
                        + cfgBos, "use the same BOS id in both files", "generation_bos", genBos, "config_bos", cfgBos);
        }
        int vocab = c.vocabSize();
        if (vocab <= 0) return;
        for (String key : List.of("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")) {
            List<Integer> bad = LintContext.ids(g.get(key)).stream().filter(i -> i < 0 || i >= vocab).toList();
            if (!bad.isEmpty())
                c.add(Rules.GEN_OUT_OF_RANGE, ERROR, "generation_config.json " + key + " " + bad + " is outside the vocabulary [0, "
                        + vocab + ")", "fix " + key, "key", key, "ids", bad, "vocab_size", vocab);
        }
    }

    /** A special token as tokenizer_config.json writes it: a string, or an AddedToken object with "content". */
    static String content(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.get("content").asText();
        return null;
    }
}
