package modeldiff.lint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.Fixtures;
import modeldiff.model.DType;
import modeldiff.model.SafeTensorsWriter;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A clean fixture release copied to a temporary folder, then edited to plant one bug: config.json keys, or tensors
 * rewritten with {@link SafeTensorsWriter}. {@link #lint} checks the folder is byte-identical after lint.
 */
final class Planted {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** One tensor as values (float64) plus the dtype and shape to store it with. */
    static final class Tensor {
        DType dtype;
        long[] shape;
        double[] values;

        Tensor(DType dtype, long[] shape, double[] values) {
            this.dtype = dtype;
            this.shape = shape;
            this.values = values;
        }

        int cols() {
            return (int) shape[shape.length - 1];
        }

        void row(int r, double scale) {
            for (int j = 0; j < cols(); j++) values[r * cols() + j] *= scale;
        }
    }

    final Path dir;

    private Planted(Path dir) {
        this.dir = dir;
    }

    /** A release already written to {@code dir} (e.g. by SyntheticModel), to edit in place. */
    static Planted at(Path dir) {
        return new Planted(dir);
    }

    static Planted copy(String fixture, Path tmp) {
        Path src = Fixtures.model(fixture);
        Path dst = tmp.resolve(fixture);
        try {
            Files.createDirectories(dst);
            try (Stream<Path> s = Files.list(src)) {
                for (Path p : s.toList()) Files.copy(p, dst.resolve(p.getFileName()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new Planted(dst);
    }

    Planted config(Consumer<ObjectNode> edit) {
        return json("config.json", edit);
    }

    /** Edits (or creates, from {}) a JSON file of the release. */
    Planted json(String file, Consumer<ObjectNode> edit) {
        try {
            Path p = dir.resolve(file);
            ObjectNode root = Files.exists(p) ? (ObjectNode) JSON.readTree(p.toFile()) : JSON.createObjectNode();
            edit.accept(root);
            Files.writeString(p, JSON.writeValueAsString(root));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }

    Planted resource(String resource, String file) {
        try (InputStream in = Planted.class.getResourceAsStream("/lint/" + resource)) {
            Files.copy(in, dir.resolve(file), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }

    /** Reads every tensor of a single-file release, lets {@code edit} change the map (order kept), writes it back. */
    Planted tensors(Consumer<Map<String, Tensor>> edit) {
        TensorStore store = TensorStore.open(dir);
        Map<String, Tensor> all = new LinkedHashMap<>();
        for (TensorInfo t : store.tensors().values())
            all.put(t.name(), new Tensor(t.dtype(), t.shape(), TensorStore.readDoubles(t, 0, t.elementCount())));
        edit.accept(all);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        all.forEach((name, t) -> w.add(name, t.dtype, t.shape, t.values));
        w.write(dir.resolve(TensorStore.SINGLE_FILE));
        return this;
    }

    LintReport lint() {
        return lint(LintOptions.defaults());
    }

    LintReport lint(int... tokens) {
        return lint(LintOptions.defaults().withTokens(tokens));
    }

    /** Lints and asserts the model folder is unchanged, file for file, byte for byte. */
    LintReport lint(LintOptions options) {
        return lintUnchanged(dir, options);
    }

    static LintReport lintUnchanged(Path dir, LintOptions options) {
        Map<String, String> before = checksums(dir);
        LintReport r = Linter.lint(dir, options);
        assertEquals(before, checksums(dir), "lint modified the model folder " + dir);
        for (Finding f : r.findings())
            assertTrue(Rules.ALL.stream().anyMatch(rule -> rule.id().equals(f.rule())), "rule not in the catalog: " + f.rule());
        return r;
    }

    static Map<String, String> checksums(Path dir) {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Path p : s.filter(Files::isRegularFile).toList())
                out.put(dir.relativize(p) + " " + Files.getLastModifiedTime(p).toMillis(), HexFormat.of().formatHex(md.digest(Files.readAllBytes(p))));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }
}
