package modeldiff.notebook;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every walkthrough in notebooks/ runs in CI, so none can rot; the rendered pages go to target/notebooks/. */
class NotebooksTest {
    @TestFactory
    List<DynamicTest> notebooksRun() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("notebooks"))) {
            return s.filter(p -> p.toString().endsWith(".jsh")).sorted().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
                NotebookRunner.Result r = NotebookRunner.run(p);
                assertFalse(r.cells().isEmpty());
                Path out = Path.of("target", "notebooks", p.getFileName().toString().replace(".jsh", ".html"));
                NotebookRunner.render(r, out);
                assertTrue(Files.size(out) > 1000);
            })).toList();
        }
    }
}
