package modeldiff.tokenizer;

import java.util.ArrayList;
import java.util.List;

/** The special tokens a tokenizer puts before and after the text (BOS ... EOS), ids with their pieces. */
public record SpecialTokens(int[] prefix, List<String> prefixPieces, int[] suffix, List<String> suffixPieces) {
    public static final SpecialTokens NONE = new SpecialTokens(new int[0], List.of(), new int[0], List.of());

    boolean isEmpty() {
        return prefix.length == 0 && suffix.length == 0;
    }

    Encoded wrap(Encoded body) {
        int[] ids = new int[prefix.length + body.length() + suffix.length];
        System.arraycopy(prefix, 0, ids, 0, prefix.length);
        System.arraycopy(body.ids(), 0, ids, prefix.length, body.length());
        System.arraycopy(suffix, 0, ids, prefix.length + body.length(), suffix.length);
        List<String> pieces = new ArrayList<>(prefixPieces);
        pieces.addAll(body.pieces());
        pieces.addAll(suffixPieces);
        return new Encoded(ids, pieces);
    }

    /** What a tokenizer adds around a plain word: the ids with special tokens, less those without. */
    public static SpecialTokens observe(TextTokenizer t) {
        Encoded with = t.encode("hello", true), without = t.encode("hello", false);
        int[] w = with.ids(), wo = without.ids();
        int start = -1;
        for (int s = 0; s + wo.length <= w.length && start < 0; s++)
            if (java.util.Arrays.equals(java.util.Arrays.copyOfRange(w, s, s + wo.length), wo)) start = s;
        if (start < 0) return NONE;
        int end = start + wo.length;
        return new SpecialTokens(java.util.Arrays.copyOfRange(w, 0, start), with.pieces().subList(0, start),
                java.util.Arrays.copyOfRange(w, end, w.length), with.pieces().subList(end, w.length));
    }
}
