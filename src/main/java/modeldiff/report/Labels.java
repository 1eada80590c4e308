package modeldiff.report;

import modeldiff.compare.Comparison;

import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Short names for chart legends and headings: a trace's file name instead of its whole path, unless two sides would
 * then look alike. Full labels stay in the tables and the JSON.
 */
final class Labels {
    private Labels() {
    }

    /** Index 0 is the reference, then the candidates in order. */
    static List<String> shortLabels(Comparison cmp) {
        List<String> full = new ArrayList<>();
        full.add(cmp.reference().label());
        cmp.candidates().forEach(c -> full.add(c.side().label()));
        List<String> out = new ArrayList<>();
        Map<String, Integer> count = new HashMap<>();
        for (String f : full) count.merge(fileName(f), 1, Integer::sum);
        for (String f : full) {
            String s = fileName(f);
            out.add(count.get(s) > 1 ? f : s);
        }
        return out;
    }

    private static String fileName(String label) {
        try {
            Path name = Path.of(label).getFileName();
            return name == null ? label : name.toString();
        } catch (InvalidPathException e) {
            return label;
        }
    }
}
