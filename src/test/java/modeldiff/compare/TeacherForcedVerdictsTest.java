package modeldiff.compare;

import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.Fixtures;
import modeldiff.forward.Fixes;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.hunt.Hunt;
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
import java.util.TreeSet;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reduced-precision verdicts from teacher-forced comparison (issue #20), with the fixtures split in two: the
 * {@link TieBudget}'s minimum counts were measured on {@link #CALIBRATION}; {@link #HELD_OUT} never set a threshold
 * and is judged here on its own. docs/metrics.md reports the two parts separately.
 */
class TeacherForcedVerdictsTest {
    static final Set<String> CALIBRATION = Set.of("gemma", "gemma2", "llama", "mistral", "gpt2", "phi3");
    static final Set<String> HELD_OUT = Set.of("gemma3", "llama-linear", "nemotron", "qwen2", "qwen3");
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The budget's minimum counts still bound the calibration data with their stated 2× margin: at most
     * MIN_DIFFERING/2 differing elements and MIN_FAR/2 elements beyond FAR_ULPS per probe of lowp forced by each clean
     * HF bf16/fp16 trace of the calibration fixtures.
     */
    @Test
    void minimumCountsBoundTheCalibrationData() throws IOException {
        long worstDiffering = 0, worstFar = 0;
        for (Path t : traces(CALIBRATION, "hf-(bfloat16|float16).*")) {
            Trace hf = TraceFiles.read(t);
            Precision p = Precision.parse(hf.dtype());
            Trace low = new LowpPass(p, Fixes.NONE).run(model(t), ForwardInput.forcedBy(hf), ProbeLevel.ALL);
            for (String probe : hf.probeNames()) {
                UlpDiff d = UlpDiff.of(hf.probe(probe).data(), low.probe(probe).data(), p);
                worstDiffering = Math.max(worstDiffering, d.differing());
                worstFar = Math.max(worstFar, d.beyond(TieBudget.FAR_ULPS));
            }
        }
        assertTrue(worstDiffering <= TieBudget.MIN_DIFFERING / 2, "measured " + worstDiffering);
        assertTrue(worstFar <= TieBudget.MIN_FAR / 2, "measured " + worstFar);
    }

    @TestFactory
    List<DynamicTest> heldOutCleanTracesShowNoExcess() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path t : traces(HELD_OUT, "hf-(bfloat16|float16).*")) {
            tests.add(DynamicTest.dynamicTest(label(t), () -> {
                Trace hf = TraceFiles.read(t);
                Comparison c = compare(model(t), hf);
                assertTrue(!c.anyExcess(), c.verdict());
                for (ProbeLevel level : ProbeLevel.values()) {
                    Hunt.Result r = Hunt.run(model(t), level == ProbeLevel.ALL ? hf : layersOnly(hf, model(t)), null, null, s -> { });
                    assertEquals(Hunt.Verdict.MATCH, r.verdict(), level + ": " + r.sentence());
                }
            }));
        }
        assertTrue(tests.size() >= 10, "held-out clean traces missing: " + tests.size());
        return tests;
    }

    @TestFactory
    List<DynamicTest> heldOutPlantsAreFlaggedAtTheirOpAndNamed() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path t : traces(HELD_OUT, "planted-.*(bfloat16|float16).*")) {
            tests.add(DynamicTest.dynamicTest(label(t), () -> {
                Trace target = TraceFiles.read(t);
                Set<String> planted = new TreeSet<>();
                JSON.readTree(target.extra().get("planted")).forEach(n -> planted.add(n.asText().replace("1.0", "1")));
                Comparison c = compare(model(t), target);
                Comparison.Divergence d = c.candidates().get(0).firstDivergence();
                assertNotNull(d, "planted " + planted + " not flagged");
                String expectedOp = planted.iterator().next().startsWith("norm.") ? "attn_norm" : "q";
                assertEquals("layers.0." + expectedOp, d.probe().name(), d.sentence());
                for (ProbeLevel level : ProbeLevel.values()) {
                    Hunt.Result r = Hunt.run(model(t), level == ProbeLevel.ALL ? target : layersOnly(target, model(t)), null, null, s -> { });
                    assertEquals(planted, new TreeSet<>(r.best().fixes()), level + ": " + r.sentence());
                }
            }));
        }
        assertTrue(tests.size() >= 2, "held-out planted traces missing");
        return tests;
    }

    /**
     * A bug in the later layers only (our own lowp with Gemma's norm cast from layer k on, faithful before): the
     * forced comparison flags layer k's first norm, and the hunt names the fix scoped to those layers, from sub-layer
     * and from layers-only targets. Free-running, the same target is what made the old verdicts miss such bugs.
     */
    @Test
    void aBugInTheLaterLayersOnlyIsFoundAndScoped() {
        for (String name : List.of("gemma", "gemma3")) {
            Model m = Model.open(Fixtures.model(name));
            int L = m.config.numLayers, k = L / 2;
            ForwardInput in = new ForwardInput(new int[]{2, 40, 7, 200, 91, 5, 18, 150, 33, 64}, 0);
            LowpPass faithful = new LowpPass(Precision.BF16, Fixes.NONE);
            Trace head = faithful.runLayers(m, in, ProbeLevel.ALL, 0, k, null);
            Trace tail = new LowpPass(Precision.BF16, Fixes.parse("norm.cast_before_weight"))
                    .runLayers(m, in, ProbeLevel.ALL, k, L, head.probe("layers." + (k - 1)).data());
            Trace target = new Trace("test: norm cast from layer " + k, "bfloat16", "cpu", in.tokens(), 0);
            for (Trace part : List.of(head, tail))
                for (String p : part.probeNames()) target.put(p, part.probe(p).cols(), part.probe(p).data());

            Comparison c = compare(m, target);
            assertEquals("layers." + k + ".attn_norm", c.candidates().get(0).firstDivergence().probe().name(), name);
            for (Trace t : List.of(target, layersOnly(target, m))) {
                Hunt.Result r = Hunt.run(m, t, null, null, s -> { });
                assertEquals(Hunt.Verdict.EXPLAINED, r.verdict(), r.sentence());
                assertEquals(List.of("norm.cast_before_weight"), r.best().fixes(), r.sentence());
                // Layers k..L-1 and the final norm: the plant covers them, not the layers before. From layer outputs
                // alone a clean layer k-1 may also be within its (measured, wider) floor with the fix applied.
                List<Integer> expected = new java.util.ArrayList<>(IntStream.range(k, L).boxed().toList());
                expected.add(Hunt.HEAD);
                if (t == target || r.best().scope() != null)
                    assertEquals(expected, r.best().scope(), name + ": " + r.sentence());
            }
            Trace everywhere = new LowpPass(Precision.BF16, Fixes.parse("norm.cast_before_weight")).run(m, in, ProbeLevel.ALL);
            assertNull(Hunt.run(m, everywhere, null, null, s -> { }).best().scope(), "a bug in every layer needs no scope");
        }
    }

    static Comparison compare(Model m, Trace target) {
        Precision p = Precision.parse(target.dtype());
        String spec = p == Precision.BF16 ? "lowp:bf16" : "lowp:fp16";
        ProbeLevel level = target.has("layers.0.q") ? ProbeLevel.ALL : ProbeLevel.LAYERS;
        return CompareRunner.forced(m, ForwardInput.forcedBy(target).free(), level, CompareRunner.Spec.parse(spec, "--reference"),
                List.of(CompareRunner.Spec.of("target", target)), false, s -> { });
    }

    static Trace layersOnly(Trace full, Model m) {
        Trace t = new Trace(full.producer(), full.dtype(), full.device(), full.tokens(), full.positionOffset());
        for (String p : ProbeLevel.LAYERS.names(m.config.numLayers))
            if (full.has(p)) t.put(p, full.probe(p).cols(), full.probe(p).data());
        return t;
    }

    private static Model model(Path trace) {
        return Model.open(trace.getParent().getParent().resolve("model"));
    }

    private static String label(Path t) {
        return t.getParent().getParent().getFileName() + "/" + t.getFileName();
    }

    private static List<Path> traces(Set<String> fixtures, String pattern) throws IOException {
        List<Path> out = new ArrayList<>();
        for (String f : new TreeSet<>(fixtures)) {
            Path dir = Fixtures.ROOT.resolve(f).resolve("traces");
            if (!Files.isDirectory(dir)) throw new IllegalStateException("fixture traces missing: " + dir);
            try (var s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().matches(pattern)).sorted().forEach(out::add);
            }
        }
        return out;
    }
}
