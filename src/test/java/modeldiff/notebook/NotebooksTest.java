package modeldiff.notebook;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every walkthrough in notebooks/ runs in CI and must still reach the conclusions its prose states (the hunt names
 * each planted bug, lint finds each planted mistake); its temporary folders are gone afterwards. Rendered pages go to
 * target/notebooks/.
 */
class NotebooksTest {
    /** Per notebook, lines its output must contain: the conclusions its text draws. A new notebook must add its own. */
    static final Map<String, List<String>> CONCLUSIONS = Map.of(
            "1-gemma-investigation.jsh", List.of("explained by [act.gelu_exact]", "8191 -> 8192",
                    "positions 8150+: explained by [rope.bf16_angles]", "explained by [norm.cast_before_weight]",
                    "sqrt(3072) = 55.42562584220407 -> bf16 55.5"),
            "2-gemma2-softcap-and-scale.jsh", List.of("planted-attn.no_softcap-float32: explained by [attn.no_softcap]",
                    "planted-logits.no_softcap-float32: explained by [logits.no_softcap]",
                    "planted-attn.scale16-float32: explained by [attn.scalar=16]"),
            "3-linting-a-release.jsh", List.of("(clean)", "WARNING config.pad_equals_eos:",
                    "WARNING config.sliding_window_not_power_of_two: sliding_window 2047", "WARNING input.untrained_token:",
                    "WARNING weights.untrained_rows:"));

    @TestFactory
    List<DynamicTest> notebooksRun() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("notebooks"))) {
            List<Path> books = s.filter(p -> p.toString().endsWith(".jsh")).sorted().toList();
            assertEquals(CONCLUSIONS.keySet(), books.stream().map(p -> p.getFileName().toString()).collect(Collectors.toSet()),
                    "every notebook, and only those, has its conclusions listed here");
            return books.stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
                NotebookRunner.Result r = NotebookRunner.run(p);
                assertFalse(r.cells().isEmpty());
                String output = r.cells().stream().map(NotebookRunner.Cell::output).collect(Collectors.joining("\n"));
                List<String> expected = CONCLUSIONS.get(p.getFileName().toString());
                assertNotNull(expected);
                for (String line : expected) assertTrue(output.contains(line), "missing \"" + line + "\" in:\n" + output);
                for (Path d : r.tempDirs()) assertFalse(Files.exists(d), d + " left behind");
                Path out = Path.of("target", "notebooks", p.getFileName().toString().replace(".jsh", ".html"));
                NotebookRunner.render(r, out);
                assertTrue(Files.size(out) > 1000);
            })).toList();
        }
    }

    @org.junit.jupiter.api.Test
    void theLintWalkthroughsCleanReleaseHasNoWarning() throws IOException {
        NotebookRunner.Result r = NotebookRunner.run(Path.of("notebooks/3-linting-a-release.jsh"));
        String clean = r.cells().stream().map(NotebookRunner.Cell::output).filter(o -> o.contains("(clean)")).findFirst().orElseThrow();
        assertEquals("(clean)", clean.strip(), "the clean fixture must lint without warnings or errors");
        assertEquals(3, r.tempDirs().size(), "three copies of fixtures");
    }
}
