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

    /**
     * The fixes a fixture maker planted in a trace (its "planted" metadata: the answer key tests may use), as today's
     * ids: the fixtures were made when attn.scale=S meant 1/sqrt(S) (HF's query_pre_attn_scalar), now attn.scalar=S.
     */
    public static java.util.List<String> planted(modeldiff.trace.Trace t) {
        String json = t.extra().get("planted");
        if (json == null) return java.util.List.of();
        try {
            java.util.List<String> out = new java.util.ArrayList<>();
            for (com.fasterxml.jackson.databind.JsonNode n : new com.fasterxml.jackson.databind.ObjectMapper().readTree(json))
                out.add(n.asText().replaceFirst("^attn\\.scale=([0-9.]+)$", "attn.scalar=$1"));
            return out;
        } catch (IOException e) {
            throw new IllegalStateException("planted metadata is not a JSON list: " + json, e);
        }
    }

    /** Ids compared by meaning: "rope.partial=1.0" and "rope.partial=1" are one fix. */
    public static String canonical(String id) {
        modeldiff.forward.Fixes.parse(id);
        int eq = id.indexOf('=');
        if (eq < 0) return id;
        String v = id.substring(eq + 1);     // numbers by value ("rope.partial=1.0" = "=1"); words as written ("=short")
        return v.matches("[-+0-9.eE]+") ? id.substring(0, eq + 1) + Double.parseDouble(v) : id;
    }

    public static java.util.Set<String> canonicalSet(java.util.Collection<String> ids) {
        java.util.Set<String> out = new java.util.TreeSet<>();
        for (String id : ids) out.add(canonical(id));
        return out;
    }

    /** A layers-only teacher: {@code hf}'s layer probes times {@code factor} (1.01: unlike anything the model computes). */
    public static modeldiff.trace.Trace layersTeacher(modeldiff.model.Model m, modeldiff.trace.Trace hf, double factor) {
        modeldiff.trace.Trace teacher = new modeldiff.trace.Trace("test", "float64", "cpu", hf.tokens(), hf.positionOffset());
        for (String probe : modeldiff.forward.ProbeLevel.LAYERS.names(m.config.numLayers)) {
            modeldiff.trace.Trace.Probe p = hf.probe(probe);
            double[] d = p.data().clone();
            for (int j = 0; j < d.length; j++) d[j] *= factor;
            teacher.put(probe, p.cols(), d);
        }
        return teacher;
    }
}
