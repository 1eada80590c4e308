package modeldiff.forward;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.lowp.RopeTable;
import modeldiff.numeric.Precision;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.forward.reference.RopeFormulas;
import modeldiff.hunt.Catalog;
import modeldiff.hunt.Hunt;
import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Rope;
import modeldiff.trace.Trace;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue #15 beyond what the generic parity tests cover: each pass's own RoPE tables against the fp32 buffers HF built
 * for the same configs (fixture.json, "hf_observed"), the per-layer rules HF derives when a config has no layer_types,
 * the dynamic-NTK question, and planted values outside the catalog's generated candidates.
 */
class DenseFamiliesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode observed(String fixture) throws IOException {
        return JSON.readTree(Fixtures.ROOT.resolve(fixture).resolve("fixture.json").toFile()).get("hf_observed");
    }

    /**
     * HF's fp32 inv_freq buffer and attention scaling, as built at init (short factors for longrope, the base length
     * for dynamic): lowp's RopeTable must equal it to one fp32 ulp, the reference's float64 formulas to 1e-6 relative.
     */
    @TestFactory
    List<DynamicTest> ropeTablesMatchHfBuffers() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : List.of("phi3-longrope", "qwen2-yarn", "llama-yarn-ds", "llama-dynamic", "gpt_neox", "smollm3",
                "gemma3-v4", "llama", "llama-linear")) {
            tests.add(DynamicTest.dynamicTest(name, () -> {
                JsonNode rope = observed(name).get("rope");
                ModelConfig c = Model.open(Fixtures.model(name)).config;
                for (LayerSpec l : c.layers) {
                    String prefix = rope.has("model.rotary_emb.inv_freq") ? "" : rope.has("gpt_neox.rotary_emb.inv_freq") ? "" :
                            l.sliding() ? "sliding_attention_" : "full_attention_";
                    String base = rope.has("gpt_neox.rotary_emb.inv_freq") ? "gpt_neox.rotary_emb." : "model.rotary_emb.";
                    JsonNode hf = rope.get(base + prefix + "inv_freq");
                    double hfScaling = rope.get(base + prefix + "attention_scaling").asDouble();
                    RopeSpec s = l.rope();
                    int rot = Rope.rotaryDim(c.headDim, s.partialRotaryFactor());
                    long initLen = 1; // HF builds the buffer with seq_len None: short factors, dynamic at its base length
                    RopeTable.Fp32 table = RopeTable.of(s, rot, initLen);
                    Rope.Frequencies exact = RopeFormulas.frequencies(s, rot, initLen);
                    assertEquals(hf.size(), table.invFreq().length, "rotary pairs");
                    for (int j = 0; j < hf.size(); j++) {
                        float h = (float) hf.get(j).asDouble();
                        assertTrue(Math.abs(table.invFreq()[j] - h) <= Math.ulp(h),
                                name + " layer " + l.index() + " pair " + j + ": RopeTable " + table.invFreq()[j] + " vs HF " + h);
                        assertEquals(h, exact.invFreq()[j], 1e-6 * h, name + " pair " + j + " (float64 formula)");
                    }
                    assertEquals(hfScaling, table.attentionScaling(), 1e-15, "attention scaling (lowp)");
                    assertEquals(hfScaling, exact.attentionScaling(), 1e-15, "attention scaling (reference)");
                }
            }));
        }
        return tests;
    }

    /** Configs without layer_types: our windows per layer are the ones HF derived and masked with. */
    @TestFactory
    List<DynamicTest> derivedLayerTypesMatchHf() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : List.of("gemma2-derived", "gemma3-v4", "qwen2-swa")) {
            tests.add(DynamicTest.dynamicTest(name, () -> {
                ModelConfig c = Model.open(Fixtures.model(name)).config;
                assertTrue(c.raw.get("layer_types") == null, "the fixture's config must omit layer_types");
                JsonNode types = observed(name).get("layer_types"), masks = observed(name).get("attention_masks");
                for (LayerSpec l : c.layers) {
                    assertEquals(types.get(l.index()).asText().equals("sliding_attention"), l.sliding(), name + " layer " + l.index());
                    JsonNode m = masks.get(Integer.toString(l.index()));
                    assertEquals(m.isTextual() ? 0 : m.get("window").asInt(), l.slidingWindow(), name + " window of layer " + l.index());
                }
            }));
        }
        return tests;
    }

    /** Gemma 3 v4 keys: sliding layers get rope_local_base_freq unscaled, full layers rope_theta with the linear factor. */
    @Test
    void gemma3V4RopePerLayerType() throws IOException {
        ModelConfig c = Model.open(Fixtures.model("gemma3-v4")).config;
        for (LayerSpec l : c.layers) {
            assertEquals(l.sliding() ? 10000.0 : 1_000_000.0, l.rope().theta(), "layer " + l.index());
            assertEquals(l.sliding() ? "default" : "linear", l.rope().type(), "layer " + l.index());
        }
    }

    /** SmolLM3: no_rope_layers [1, 1, 1, 0] means layer 3 alone skips RoPE (1 = use RoPE). */
    @Test
    void smollm3NopePolarity() {
        ModelConfig c = Model.open(Fixtures.model("smollm3")).config;
        List<Boolean> nope = c.layers.stream().map(LayerSpec::nope).toList();
        assertEquals(List.of(false, false, false, true), nope);
        assertEquals(null, Fixes.NONE.layerRope(c.layers.get(3), c));
        assertEquals(null, Fixes.parse("rope.nope_inverted").layerRope(c.layers.get(0), c));
    }

    /**
     * The dynamic-NTK discrepancy (docs/reference.md): HF's strict float64 dumper used to leave torch's default dtype
     * at float32, and HF computes the NTK base as factor * seq_len (an int64 tensor) / max_position_embeddings, which
     * then lands in float32. The inv_freq HF held after a 40-token forward in each mode (printed by
     * reference-impls/dense_fixtures.py, reference-impls/dense_fixtures.log) shows it: with float64 as the default the
     * buffer equals our float64 formula; with float32 it is our formula on a base rounded to float32.
     */
    @Test
    void dynamicNtkBaseRoundedToFloat32InTheOldDumper() {
        String[] hfDefault64 = {"0x1.0000000000000p+0", "0x1.3197ed4f0cdc2p-2", "0x1.6ccb5da02be14p-4", "0x1.b376c8a8f883ap-6",
                "0x1.03e979e68d85fp-7", "0x1.364369e1fd8f8p-9", "0x1.725e7285eace6p-11", "0x1.ba1e537ae783ap-13"};
        String[] hfDefault32 = {"0x1.0000000000000p+0", "0x1.3197ed3ed5830p-2", "0x1.6ccb5d7974bf7p-4", "0x1.b376c863a5c5ep-6",
                "0x1.03e979af62608p-7", "0x1.3643698faba12p-9", "0x1.725e720fff0bap-11", "0x1.ba1e52d6adaadp-13"};
        ModelConfig c = Model.open(Fixtures.model("llama-dynamic")).config;
        RopeSpec s = c.layers.get(0).rope();
        int rot = Rope.rotaryDim(c.headDim, s.partialRotaryFactor());
        double[] ours = RopeFormulas.frequencies(s, rot, 40).invFreq();
        double base = s.theta() * Math.pow(s.factor() * 40 / s.maxPositionEmbeddings() - (s.factor() - 1), rot / (rot - 2.0));
        double[] onFloat32Base = new double[rot / 2];
        for (int j = 0; j < onFloat32Base.length; j++) onFloat32Base[j] = 1.0 / Math.pow((float) base, (2.0 * j) / rot);
        for (int j = 0; j < ours.length; j++) {
            double h64 = Double.parseDouble(hfDefault64[j]), h32 = Double.parseDouble(hfDefault32[j]);
            assertEquals(h64, ours[j], 1e-15 * h64, "pair " + j + " vs HF with float64 default");
            assertEquals(h32, onFloat32Base[j], 1e-15 * h32, "pair " + j + " vs HF with float32 default");
            if (j > 0) assertTrue(Math.abs(h32 - ours[j]) > 1e-9 * h32, "pair " + j + ": the old dumper's table differs");
        }
    }

    /** Trace level: reference vs the old dumper's trace vs the fixed one (hf-float64 is also in HfParityTest). */
    @Test
    void dynamicNtkTraces() {
        Model model = Model.open(Fixtures.model("llama-dynamic"));
        Trace fixed = TraceFiles.read(Fixtures.trace("llama-dynamic", "hf-float64.safetensors"));
        Trace old = TraceFiles.read(Fixtures.trace("llama-dynamic", "evidence-hf-float64-f32default.safetensors"));
        Trace ours = new ReferencePass().run(model, new ForwardInput(fixed.tokens(), fixed.positionOffset()), ProbeLevel.ALL);
        double worstFixed = worst(fixed, ours), worstOld = worst(old, ours);
        System.out.printf("llama-dynamic reference vs HF strict float64: %.2f (float64 default), %.2f (float32 default)%n",
                worstFixed, worstOld);
        assertTrue(worstFixed <= -10, "fixed dumper " + worstFixed);
        assertTrue(worstOld > -10, "old dumper " + worstOld);
    }

    private static double worst(Trace hf, Trace ours) {
        double w = Double.NEGATIVE_INFINITY;
        for (String p : hf.probeNames()) w = Math.max(w, Metrics.logL2(hf.probe(p).data(), ours.probe(p).data()));
        return w;
    }

    /**
     * Two planted traces use values the catalog does not generate (norm.eps=0.001 on OLMo 2, rope.theta=1000 on
     * SmolLM3): named by the caller next to every generated candidate, the hunt must pick exactly that value.
     */
    @TestFactory
    List<DynamicTest> offCatalogValuesNamedWhenProposed() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] c : new String[][]{{"olmo2", "offcatalog-norm.eps0.001-float32.safetensors", "norm.eps=0.001"},
                {"smollm3", "offcatalog-rope.theta1000-float32.safetensors", "rope.theta=1000"}}) {
            tests.add(DynamicTest.dynamicTest(c[0] + " " + c[2], () -> {
                Model model = Model.open(Fixtures.model(c[0]));
                Trace target = TraceFiles.read(Fixtures.trace(c[0], c[1]));
                Set<String> only = new LinkedHashSet<>(Catalog.candidates(model, false, null));
                only.add(c[2]);
                Hunt.Result r = Hunt.run(model, target, null, only, s -> { });
                assertEquals(Hunt.Verdict.EXPLAINED, r.verdict(), r.sentence());
                assertEquals(List.of(c[2]), r.best().fixes(), r.sentence());
            }));
        }
        return tests;
    }

    /** LongRoPE and YaRN beyond the original context: every pass's table agrees with the reference's formula. */
    @Test
    void longFactorsChosenByLength() {
        ModelConfig c = Model.open(Fixtures.model("phi3-longrope")).config;
        RopeSpec s = c.layers.get(0).rope();
        int rot = Rope.rotaryDim(c.headDim, s.partialRotaryFactor());
        double[] shortInv = RopeFormulas.frequencies(s, rot, 16).invFreq(), longInv = RopeFormulas.frequencies(s, rot, 17).invFreq();
        float[] shortF = RopeTable.of(s, rot, 16).invFreq(), longF = RopeTable.of(s, rot, 17).invFreq();
        for (int j = 0; j < shortInv.length; j++) {
            assertEquals(s.shortFactor()[j] / s.longFactor()[j], longInv[j] / shortInv[j], 1e-12, "pair " + j);
            assertEquals(shortInv[j], shortF[j], 1e-6 * shortInv[j]);
            assertEquals(longInv[j], longF[j], 1e-6 * longInv[j]);
        }
        assertArrayEquals(RopeTable.of(s.withLongropeFactors(true), rot, 1).invFreq(), longF, "rope.longrope_factors=long");
    }

    /** lowp:fp32 honours each new fix as the reference does (the hunt proves the reference's reading against HF). */
    @TestFactory
    List<DynamicTest> lowpHonoursTheNewFixes() {
        String[][] cases = {{"phi3-longrope", "hf-float64.safetensors", "rope.longrope_factors=long"},
                {"phi3-longrope", "hf-float64-off20.safetensors", "rope.longrope_factors=short"},
                {"smollm3", "hf-float64.safetensors", "rope.nope_inverted"},
                {"gpt_neox", "hf-float64.safetensors", "block.sequential"},
                {"olmo2", "hf-float64.safetensors", "qk_norm.per_head"},
                {"gemma3", "hf-float64.safetensors", "rope.scaling_all_layers"}};
        List<DynamicTest> tests = new ArrayList<>();
        for (String[] c : cases) {
            tests.add(DynamicTest.dynamicTest(c[0] + " " + c[2], () -> {
                Trace hf = TraceFiles.read(Fixtures.trace(c[0], c[1]));
                Model model = Model.open(Fixtures.model(c[0]));
                ForwardInput in = new ForwardInput(hf.tokens(), hf.positionOffset());
                Fixes fixes = Fixes.parse(c[2]);
                Trace ref = new ReferencePass(fixes).run(model, in, ProbeLevel.ALL);
                double withFix = worst(ref, new LowpPass(Precision.FP32, fixes).run(model, in, ProbeLevel.ALL));
                double without = worst(ref, new LowpPass(Precision.FP32, Fixes.NONE).run(model, in, ProbeLevel.ALL));
                System.out.printf("lowp:fp32 vs reference with %-28s %7.2f (lowp without the fix %7.2f)%n", c[2], withFix, without);
                assertTrue(withFix <= -5 && without > -3, c[2] + ": with " + withFix + ", without " + without);
            }));
        }
        return tests;
    }

    /** The measurement behind docs/reference.md's rows for these fixtures (HfParityTest asserts the same bound). */
    @TestFactory
    List<DynamicTest> referenceVsHfPerTrace() {
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : List.of("olmo2", "smollm3", "gpt_neox", "llama-dynamic", "phi3-longrope", "qwen2-yarn",
                "llama-yarn-ds", "gemma2-derived", "gemma3-v4", "qwen2-swa", "gpt2-scaled")) {
            tests.add(DynamicTest.dynamicTest(name, () -> {
                Model model = Model.open(Fixtures.model(name));
                StringBuilder row = new StringBuilder(String.format("%-15s", name));
                for (String t : List.of("hf-float64", "hf-float32", "hf-float64-off20", "hf-float64-off40")) {
                    Path tp = Fixtures.trace(name, t + ".safetensors");
                    if (!java.nio.file.Files.exists(tp)) continue;
                    Trace hf = TraceFiles.read(tp);
                    double w = worst(hf, new ReferencePass().run(model, new ForwardInput(hf.tokens(), hf.positionOffset()), ProbeLevel.ALL));
                    row.append(String.format("  %s %7.2f", t, w));
                    assertTrue(w <= (t.contains("64") ? -10 : -4.5), name + "/" + t + " " + w);
                }
                System.out.println("reference vs " + row);
            }));
        }
        return tests;
    }
}
