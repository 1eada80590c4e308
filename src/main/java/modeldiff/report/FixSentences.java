package modeldiff.report;

import modeldiff.hunt.Catalog;
import modeldiff.hunt.Hunt;

import java.util.ArrayList;
import java.util.List;

/** What a hunt's answer means in words, from the catalog's meaning of each fix: the sentence reports conclude with. */
public final class FixSentences {
    private FixSentences() {
    }

    /** "act.gelu_exact: GELU computed with erf instead of ...; window=4: sliding window 4 ..." */
    public static String describe(List<String> fixIds) {
        List<String> parts = new ArrayList<>();
        for (String id : fixIds) {
            Catalog.Entry e = Catalog.entry(id);
            parts.add(e == null ? id : id + ": " + withValue(e, id));
        }
        return String.join("; ", parts);
    }

    /** The conclusion of a hunt on a suspect trace, derived from its verdict and the fixes it named. */
    public static String conclusion(Hunt.Result r, String who) {
        return switch (r.verdict()) {
            case MATCH -> who + " matches " + r.base() + ": nothing to explain";
            case EXPLAINED -> who + " differs, and the hunt explains it with " + describe(r.best().fixes());
            case UNEXPLAINED -> who + " differs, and no set of catalog fixes explains it";
        };
    }

    /** The entry's meaning with its placeholder ("V" of "norm.eps=V") replaced by the fix's value. */
    private static String withValue(Catalog.Entry e, String fixId) {
        int eq = e.id().indexOf('='), given = fixId.indexOf('=');
        if (eq < 0 || given < 0) return e.meaning();
        String name = e.id().substring(eq + 1);
        return e.meaning().replaceAll("\\b" + java.util.regex.Pattern.quote(name) + "\\b",
                java.util.regex.Matcher.quoteReplacement(fixId.substring(given + 1)));
    }
}
