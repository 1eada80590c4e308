package modeldiff.lint;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import static modeldiff.lint.Severity.ERROR;
import static modeldiff.lint.Severity.INFO;
import static modeldiff.lint.Severity.WARNING;

/** Rules on the token ids a run would use (--tokens / --tokens-from). */
final class InputRules {
    private InputRules() {
    }

    static void run(LintContext c) {
        int[] t = c.options.tokens();
        if (t == null || t.length == 0) return;
        int vocab = c.vocabSize();
        if (vocab > 0) {
            List<Integer> bad = new ArrayList<>(), at = new ArrayList<>();
            for (int i = 0; i < t.length; i++)
                if (t[i] < 0 || t[i] >= vocab) {
                    bad.add(t[i]);
                    at.add(i);
                }
            if (!bad.isEmpty())
                c.add(Rules.TOKEN_OUT_OF_RANGE, ERROR, bad.size() + " token id(s) outside the vocabulary [0, " + vocab + "): " + c.cap(bad),
                        "use ids below vocab_size", "tokens", c.cap(bad), "positions", c.cap(at), "vocab_size", vocab);
        }
        List<Integer> bos = c.tokenIds("bos_token_id");
        if (!bos.isEmpty() && c.family != null) {
            Set<Integer> bosSet = new LinkedHashSet<>(bos);
            if (!bosSet.contains(t[0])) {
                if (c.family.requiresBos)
                    c.add(Rules.MISSING_BOS, ERROR, "the tokens start with " + t[0] + ", not BOS " + bos.get(0) + ": " + c.family
                                    + " expects BOS first and its outputs collapse without it", "input.add_bos",
                            "first_token", t[0], "bos_token_id", bos);
                else if (addBos(c))
                    c.add(Rules.MISSING_BOS, INFO, "the tokens start with " + t[0] + ", not BOS " + bos.get(0)
                                    + ", though the tokenizer adds BOS (add_bos_token true): a run on these tokens is not what users get",
                            "input.add_bos", "first_token", t[0], "bos_token_id", bos);
            } else if (t.length > 1 && bosSet.contains(t[1])) {
                c.add(Rules.DOUBLE_BOS, WARNING, "the tokens start with BOS twice (" + t[0] + ", " + t[1] + "): a chat template that "
                                + "writes BOS plus a tokenizer that adds one; the second BOS shifts every position", "input.drop_bos",
                        "first_tokens", List.of(t[0], t[1]), "bos_token_id", bos);
            }
        }
        if (!c.untrainedEmbeddingRows.isEmpty()) {
            Set<Integer> pads = new LinkedHashSet<>(c.tokenIds("pad_token_id"));
            List<Integer> hit = new ArrayList<>(), at = new ArrayList<>();
            boolean onlyPad = true;
            for (int i = 0; i < t.length; i++)
                if (c.untrainedEmbeddingRows.contains(t[i])) {
                    hit.add(t[i]);
                    at.add(i);
                    onlyPad &= pads.contains(t[i]);
                }
            if (!hit.isEmpty())
                c.add(Rules.UNTRAINED_TOKEN, onlyPad ? INFO : WARNING, hit.size() + " token(s) hit untrained embedding rows: "
                                + c.cap(hit) + "; their hidden state starts near zero, so norms divide by ~sqrt(eps) and small implementation "
                                + "differences are amplified (and the model's output on them is meaningless)",
                        "pick tokens with trained rows, or set the untrained rows to the mean of the trained rows",
                        "tokens", c.cap(hit), "positions", c.cap(at), "reference", Rules.REF_LLAMA3_UNTRAINED);
        }
    }

    private static boolean addBos(LintContext c) {
        return c.tokenizerConfig != null && c.tokenizerConfig.path("add_bos_token").asBoolean(false);
    }
}
