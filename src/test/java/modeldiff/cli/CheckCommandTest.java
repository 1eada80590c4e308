package modeldiff.cli;

import modeldiff.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `modeldiff check` on mistral's fixture, whose traces folder holds HF's clean runs and two with a sliding window of 4
 * planted (the config says 5): exit 1, and the report names each failure, where it diverges, and what explains it.
 */
class CheckCommandTest {
    @TempDir
    Path tmp;

    @Test
    void reportNamesEveryFailureItsDivergenceAndExplanationAndItsTitleStatesTheVerdict() throws Exception {
        CliRun r = CliRun.of("check", "--model", Fixtures.model("mistral").toString(), "--reports", tmp.toString());
        assertEquals(1, r.code(), r.toString());
        Path html = tmp.resolve("mistral.html");
        assertTrue(r.out().contains("wrote " + html), r.toString());
        String page = unescape(Files.readString(html));
        Matcher title = Pattern.compile("<title>(.*?)</title>").matcher(page);
        assertTrue(title.find());
        assertEquals("modeldiff check mistral: FAILED, 2 of " + checks(r.out()) + " checks failed", title.group(1));
        for (String failed : new String[]{"trace:planted-window4-bfloat16.safetensors", "trace:planted-window4-float32.safetensors"}) {
            assertTrue(r.out().contains("FAIL " + failed), r.toString());
            assertTrue(page.contains("FAIL " + failed), failed);
        }
        // Each failure: its first divergence (the attention of layer 0, where the window first matters) and the hunt's fix.
        assertEquals(2, count(page, "First divergence: layers.0.attn."), page);
        assertEquals(2, count(page, "the hunt explains it with window=4: sliding window 4 instead of the config's"), page);
        // Every check is listed with its status; skips say why.
        for (String line : r.out().lines().filter(l -> l.matches("(PASS|FAIL|SKIP|ACCEPTED) .*")).toList()) {
            String id = line.split(" ")[1].replaceAll(":$", "");
            assertTrue(page.contains("<td>" + id + "</td>"), id);
        }
        assertFalse(page.contains("<td>SKIP</td><td>cuda:fp32 stays within its precision band of the float64 reference</td><td></td>"), "a skip without its reason");
        assertTrue(page.contains("Lint findings"));
    }

    @Test
    void cleanTracesPassAndTheDefaultReportFolderIsOutsideTheSourceTree() {
        CliRun r = CliRun.of("check", "--model", Fixtures.model("mistral").toString(), "--trace-filter", "hf-");
        assertEquals(0, r.code(), r.toString());
        Path expected = Path.of(System.getProperty("java.io.tmpdir"), "modeldiff", "check", "mistral.html");
        assertTrue(r.out().contains("wrote " + expected), r.toString());
        assertFalse(expected.toAbsolutePath().startsWith(Path.of("").toAbsolutePath()));
    }

    /** The entities mustache writes for the characters these assertions use. */
    static String unescape(String html) {
        return html.replace("&#61;", "=").replace("&#39;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    }

    private static long checks(String out) {
        return out.lines().filter(l -> l.matches("(PASS|FAIL|SKIP|ACCEPTED) .*")).count();
    }

    private static int count(String s, String sub) {
        int n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + 1)) n++;
        return n;
    }
}
