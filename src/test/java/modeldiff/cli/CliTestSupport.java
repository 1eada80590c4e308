package modeldiff.cli;

import modeldiff.Fixtures;
import modeldiff.model.SafeTensorsFile;
import modeldiff.model.SafeTensorsWriter;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

/** Fixture copies for the CLI tests. */
final class CliTestSupport {
    private CliTestSupport() {
    }

    /** The llama fixture's model folder copied to {@code to}. */
    static Path copyModel(String fixture, Path to) {
        try {
            Files.createDirectories(to);
            try (Stream<Path> s = Files.list(Fixtures.model(fixture))) {
                for (Path f : s.toList()) Files.copy(f, to.resolve(f.getFileName()));
            }
            return to;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Rewrites model.safetensors with {@code edit} applied to each tensor's values (name, values). */
    static void editWeights(Path model, BiConsumer<String, double[]> edit) {
        Path file = model.resolve("model.safetensors");
        SafeTensorsFile f = SafeTensorsFile.open(file);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (TensorInfo t : f.tensors().values()) {
            double[] v = TensorStore.readDoubles(t, 0, t.elementCount());
            edit.accept(t.name(), v);
            w.add(t.name(), t.dtype(), t.shape(), v);
        }
        w.write(file);
    }
}
