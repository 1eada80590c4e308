package modeldiff;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** The committed fixture releases (src/test/resources/fixtures/NAME/{model,traces}) made by reference-impls/. */
public final class Fixtures {
    public static final Path ROOT = Path.of("src/test/resources/fixtures");

    private Fixtures() {
    }

    public static List<String> names() {
        try (Stream<Path> s = Files.list(ROOT)) {
            return s.filter(p -> Files.isDirectory(p.resolve("model"))).map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new IllegalStateException("fixtures missing at " + ROOT.toAbsolutePath(), e);
        }
    }

    public static Path model(String name) {
        return ROOT.resolve(name).resolve("model");
    }

    public static Path trace(String name, String file) {
        return ROOT.resolve(name).resolve("traces").resolve(file);
    }
}
