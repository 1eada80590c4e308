package modeldiff.hunt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.Model;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reverse use: HF ran the qwen2 fixture with rope_theta 10000 and eps 1e-5 (planted); the hunt's corrected
 * config.json, put next to the unchanged weights, must make our plain reference reproduce that HF trace.
 */
class ConfigCorrectionTest {
    @TempDir
    Path tmp;

    @Test
    void correctedConfigReproducesTheTarget() throws Exception {
        Path modelDir = Fixtures.model("qwen2");
        String before = digest(modelDir);
        Trace target = TraceFiles.read(Fixtures.trace("qwen2", "planted-rope.theta10000+norm.eps1e-5-float32.safetensors"));
        Hunt.Result r = Hunt.run(Model.open(modelDir), target, null, null, s -> { });
        assertEquals(Hunt.Verdict.EXPLAINED, r.verdict(), r.sentence());

        Path out = tmp.resolve("corrected");
        ConfigCorrection.Result c = ConfigCorrection.write(Model.open(modelDir), r.best().fixes(), out);
        assertTrue(c.notExpressible().isEmpty(), c.notExpressible().toString());
        JsonNode cfg = new ObjectMapper().readTree(c.config().toFile());
        assertEquals(1e-5, cfg.get("rms_norm_eps").asDouble(), 0);
        String diff = Files.readString(c.diff());
        assertTrue(diff.contains("rms_norm_eps") && diff.contains("rope_theta"), diff);

        // The corrected release: same weights, corrected config.
        Path release = tmp.resolve("release");
        Files.createDirectories(release);
        Files.copy(c.config(), release.resolve("config.json"));
        Files.copy(modelDir.resolve("model.safetensors"), release.resolve("model.safetensors"));
        Trace ours = new ReferencePass().run(Model.open(release), new ForwardInput(target.tokens(), target.positionOffset()), ProbeLevel.ALL);
        for (String p : target.probeNames())
            assertTrue(Metrics.logL2(target.probe(p).data(), ours.probe(p).data()) < -5.5, p);
        assertEquals(before, digest(modelDir), "the model folder must not change");
    }

    /** HF's gemma2 run with query_pre_attn_scalar 16 (planted): the hunt names attn.scalar=16, the config gets it back. */
    @Test
    void attnScalarWritesQueryPreAttnScalar() throws Exception {
        Path modelDir = Fixtures.model("gemma2");
        Trace target = TraceFiles.read(Fixtures.trace("gemma2", "planted-attn.scale16-float32.safetensors"));
        Hunt.Result r = Hunt.run(Model.open(modelDir), target, null, null, s -> { });
        assertEquals(java.util.List.of("attn.scalar=16"), r.best().fixes(), r.sentence());
        ConfigCorrection.Result c = ConfigCorrection.write(Model.open(modelDir), r.best().fixes(), tmp.resolve("corrected"));
        assertTrue(c.notExpressible().isEmpty(), c.notExpressible().toString());
        JsonNode cfg = new ObjectMapper().readTree(c.config().toFile());
        assertEquals(16, cfg.get("query_pre_attn_scalar").asInt());
        assertTrue(cfg.get("query_pre_attn_scalar").isIntegralNumber(), "HF's v5 config field is typed int");
    }

    private static String digest(Path dir) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (var s = Files.list(dir)) {
            for (Path p : s.sorted().toList()) {
                md.update(p.getFileName().toString().getBytes());
                md.update(Files.readAllBytes(p));
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
