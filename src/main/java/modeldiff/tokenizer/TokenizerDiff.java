package modeldiff.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Two tokenizers on the same strings: the share that agrees (ids, and separately pieces), the first mismatches. */
public final class TokenizerDiff {
    private TokenizerDiff() {
    }

    /** One string the two tokenize differently. */
    public record Mismatch(String category, String text, Encoded a, Encoded b) {
        /** First index where the ids differ. */
        public int firstDifference() {
            int[] x = a.ids(), y = b.ids();
            int i = 0;
            while (i < Math.min(x.length, y.length) && x[i] == y[i]) i++;
            return i;
        }
    }

    /** Per category: strings, and how many agree. */
    public record Tally(int total, int agree) {
    }

    public record Result(String labelA, String labelB, int total, int agreeIds, int agreePieces, Map<String, Tally> byCategory,
                         List<Mismatch> mismatches) {
        public double share() {
            return total == 0 ? 1 : agreeIds / (double) total;
        }

        public boolean clean() {
            return agreeIds == total;
        }
    }

    /** Encodes every string with both (special tokens added: what each gives by default) and keeps the first {@code keep} mismatches. */
    public static Result diff(TextTokenizer a, String labelA, TextTokenizer b, String labelB, List<DiffCorpus.Entry> corpus, int keep) {
        int agree = 0, agreePieces = 0;
        Map<String, int[]> cats = new LinkedHashMap<>();
        List<Mismatch> mismatches = new ArrayList<>();
        for (DiffCorpus.Entry e : corpus) {
            Encoded x = a.encode(e.text(), true), y = b.encode(e.text(), true);
            boolean same = Arrays.equals(x.ids(), y.ids());
            int[] c = cats.computeIfAbsent(e.category(), k -> new int[2]);
            c[0]++;
            if (same) {
                agree++;
                c[1]++;
            } else if (mismatches.size() < keep) mismatches.add(new Mismatch(e.category(), e.text(), x, y));
            if (x.pieces().equals(y.pieces())) agreePieces++;
        }
        Map<String, Tally> by = new LinkedHashMap<>();
        cats.forEach((k, v) -> by.put(k, new Tally(v[0], v[1])));
        return new Result(labelA, labelB, corpus.size(), agree, agreePieces, by, mismatches);
    }
}
