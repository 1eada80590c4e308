package modeldiff.forward;

import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.compare.UlpDiff;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Teacher-forced runs: each probe computed from the teacher's input to it (forward/Recorder). */
class TeacherForcingTest {
    /**
     * lowp forced op by op by HF's own clean bf16/fp16 run (H200 traces) is ≥ 99% bit-identical at every probe: what
     * is left is one operation's rounding ties, not their spread.
     */
    @TestFactory
    List<DynamicTest> lowpForcedByHfIsBitIdentical() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : Fixtures.names()) {
            Path dir = Fixtures.ROOT.resolve(name).resolve("traces");
            if (!Files.isDirectory(dir)) continue;
            try (var s = Files.list(dir)) {
                for (Path tp : s.filter(p -> p.getFileName().toString().matches("hf-(bfloat16|float16).*")).sorted().toList())
                    tests.add(DynamicTest.dynamicTest(name + "/" + tp.getFileName(), () -> bitIdentical(name, tp)));
            }
        }
        assertTrue(tests.size() >= 20, "expected the clean bf16/fp16 HF traces of every fixture, found " + tests.size());
        return tests;
    }

    private static void bitIdentical(String name, Path tp) {
        Trace hf = TraceFiles.read(tp);
        Precision p = Precision.parse(hf.dtype());
        Trace low = new LowpPass(p, Fixes.NONE).run(Model.open(Fixtures.model(name)), ForwardInput.forcedBy(hf), ProbeLevel.ALL);
        assertTrue(low.extra().containsKey("teacher_forced"));
        // Chosen experts are a set: the order of exact ties within the k is the top-k kernel's (RoutingAgreement).
        assertTrue(modeldiff.compare.RoutingAgreement.of(hf, low).complete(), modeldiff.compare.RoutingAgreement.of(hf, low).describe().toString());
        for (String probe : hf.probeNames()) {
            if (modeldiff.compare.RoutingAgreement.isExpertChoice(probe)) continue;
            // (a probe HF keeps in float32 in this run, sigmoid router logits, at the dtype's resolution: TieBudget.diff)
            UlpDiff d = modeldiff.compare.TieBudget.diff(hf.probe(probe).data(), low.probe(probe).data(), p);
            assertTrue(d.fractionDiffering() <= 0.01, tp + " " + probe + ": " + d.describe());
        }
    }

    /**
     * A bug that acts only in the norms (Gemma's norm cast, planted with our own lowp) shows only at the norm probes of
     * a forced faithful run: every other op is computed from the teacher's inputs by the same arithmetic, so it is
     * bit-identical to the teacher's. In a free run the same bug reaches every probe after the first norm.
     */
    @Test
    void aNormBugShowsOnlyAtTheNorms() {
        Model m = Model.open(Fixtures.model("gemma"));
        ForwardInput in = new ForwardInput(new int[]{2, 17, 300, 4, 99, 12, 7, 250}, 0);
        Trace buggy = new LowpPass(Precision.BF16, Fixes.parse("norm.cast_before_weight")).run(m, in, ProbeLevel.ALL);
        Trace forced = new LowpPass(Precision.BF16, Fixes.NONE).run(m, ForwardInput.forcedBy(buggy), ProbeLevel.ALL);
        Trace free = new LowpPass(Precision.BF16, Fixes.NONE).run(m, in, ProbeLevel.ALL);
        Set<String> normProbes = Set.of("attn_norm", "mlp_norm");
        int normsDiffering = 0;
        for (String probe : buggy.probeNames()) {
            String op = probe.substring(probe.lastIndexOf('.') + 1);
            boolean differs = !java.util.Arrays.equals(buggy.probe(probe).data(), forced.probe(probe).data());
            if (normProbes.contains(op) || probe.equals("final_norm")) {
                if (differs) normsDiffering++;
            } else if (!probe.matches("layers\\.\\d+")) {
                // layers.i adds the teacher's attn_out/mlp_out to a residual the norm bug never touched: identical too
                assertFalse(differs, probe + " should be bit-identical to the teacher");
            }
        }
        assertTrue(normsDiffering >= 3, "the norm bug must show at the norm probes");
        assertFalse(java.util.Arrays.equals(buggy.probe("layers.1.mlp_out").data(), free.probe("layers.1.mlp_out").data()),
                "free-running, the bug spreads past the norms");
    }

    /** A layers-only teacher forces the residual stream: layer i is exactly layer i run alone on the teacher's layer i−1. */
    @Test
    void layersOnlyTeacherForcesTheResidualStream() {
        Model m = Model.open(Fixtures.model("llama"));
        Trace hf = TraceFiles.read(Fixtures.trace("llama", "hf-float64.safetensors"));
        Trace teacher = Fixtures.layersTeacher(m, hf, 1.01);        // a teacher unlike what the model computes
        ReferencePass ref = new ReferencePass();
        Trace forced = ref.run(m, ForwardInput.forcedBy(teacher), ProbeLevel.LAYERS);
        for (int i = 1; i < m.config.numLayers; i++) {
            Trace alone = ref.runLayers(m, new ForwardInput(hf.tokens(), hf.positionOffset()), ProbeLevel.LAYERS, i, i + 1,
                    teacher.probe("layers." + (i - 1)).data());
            assertArrayEquals(alone.probe("layers." + i).data(), forced.probe("layers." + i).data(), 0.0, "layers." + i);
        }
    }

    /** Forced by HF's strict float64 run, the reference still matches it to float64 precision at every probe. */
    @Test
    void referenceForcedByHfFloat64StaysExact() {
        Trace hf = TraceFiles.read(Fixtures.trace("gemma2", "hf-float64.safetensors"));
        Trace forced = new ReferencePass().run(Model.open(Fixtures.model("gemma2")), ForwardInput.forcedBy(hf), ProbeLevel.ALL);
        for (String probe : hf.probeNames())
            assertTrue(Metrics.logL2(hf.probe(probe).data(), forced.probe(probe).data()) <= -10, probe);
    }

    @Test
    void aTeacherOfOtherTokensOrShapeIsRefused() {
        Model m = Model.open(Fixtures.model("llama"));
        Trace hf = TraceFiles.read(Fixtures.trace("llama", "hf-bfloat16.safetensors"));
        assertThrows(BadInputException.class, () -> new LowpPass(Precision.BF16, Fixes.parse("input.drop_bos"))
                .run(m, ForwardInput.forcedBy(hf), ProbeLevel.ALL));
        Model other = Model.open(Fixtures.model("gemma"));
        assertThrows(BadInputException.class, () -> new LowpPass(Precision.BF16, Fixes.NONE)
                .run(other, ForwardInput.forcedBy(hf), ProbeLevel.ALL));
        assertEquals(hf.tokens().length, ForwardInput.forcedBy(hf).length());
    }
}
