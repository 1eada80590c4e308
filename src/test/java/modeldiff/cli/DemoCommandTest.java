package modeldiff.cli;

import modeldiff.hunt.Catalog;
import modeldiff.report.HtmlReport;
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
 * The demo end to end. Its suspect trace was made by HF transformers with exact GELU planted where Gemma uses the tanh
 * approximation; the conclusion it states must be the hunt's (act.gelu_exact and what that fix means), in its output
 * and as its report's title, and the report must not cite the temporary folder the model was extracted to.
 */
class DemoCommandTest {
    @TempDir
    Path tmp;

    @Test
    void theDemoConcludesWhatTheHuntFound() throws Exception {
        CliRun r = CliRun.of("demo", "--out", tmp.toString());
        assertEquals(0, r.code(), r.toString());
        String expected = "the suspect differs, and the hunt explains it with act.gelu_exact: " + Catalog.entry("act.gelu_exact").meaning();
        assertTrue(r.out().contains("conclusion: " + expected + "\n"), r.toString());
        String page = CheckCommandTest.unescape(Files.readString(tmp.resolve("demo.html")));
        Matcher title = Pattern.compile("<title>(.*?)</title>").matcher(page);
        assertTrue(title.find());
        assertEquals("modeldiff demo: " + expected, title.group(1));
        String hunt = CheckCommandTest.unescape(Files.readString(tmp.resolve("demo-hunt.html")));
        Matcher huntTitle = Pattern.compile("<title>(.*?)</title>").matcher(hunt);
        assertTrue(huntTitle.find());
        assertEquals("modeldiff hunt: explained", huntTitle.group(1));
        for (String p : new String[]{page, hunt}) {
            assertFalse(p.contains("modeldiff-demo"), "cites the temporary extraction folder");
            assertFalse(p.replace(HtmlReport.ANSWER_KEY_LABEL + "planted", "").contains("planted:"), "an unlabelled answer key");
        }
        assertTrue(page.contains(HtmlReport.ANSWER_KEY_LABEL + "planted"), "the answer key is shown only under its label");
    }
}
