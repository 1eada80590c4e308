package modeldiff.forward;

import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.Fixtures;
import modeldiff.compare.Metrics;
import modeldiff.forward.cuda.CudaPass;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.forward.torch.TorchPass;
import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * deepseek_v3's multi-head latent attention (issue #16) on tiny synthetic releases: the config as HF's
 * configuration_deepseek_v3.py reads it, an exact identity with ordinary attention (the float64 reference's MHA path,
 * written long before MLA), lowp:fp32 and torch:fp32 within fp32 noise of the float64 reference, torch:fp16 rounding as
 * lowp:fp16, and cuda's refusal.
 */
class MlaTest {
    /** Tokens of every run: 12 of them from a vocabulary of 40, positions from 3 on (offset RoPE too). */
    static final int[] TOKENS = {5, 17, 3, 39, 0, 22, 8, 8, 31, 12, 1, 27};
    static final ForwardInput INPUT = new ForwardInput(TOKENS, 3);

    @TempDir
    Path tmp;

    // ---- config ----

    /** Every MLA key absent: HF's defaults (configuration_deepseek_v3.py), each recorded as a default taken. */
    @Test
    void configDefaultsAreHfs() {
        String json = """
                {"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 4,
                 "num_attention_heads": 4, "vocab_size": 40}
                """;
        ModelConfig c = ModelConfig.parse(tmp.resolve("config.json"), json.getBytes(StandardCharsets.UTF_8));
        assertEquals(Family.DEEPSEEK_V3, c.family);
        assertNotNull(c.mla);
        assertEquals(1536, c.mla.qLoraRank());
        assertTrue(c.mla.qLora());
        assertEquals(512, c.mla.kvLoraRank());
        assertEquals(128, c.mla.qkNopeHeadDim());
        assertEquals(64, c.mla.qkRopeHeadDim());
        assertEquals(128, c.mla.vHeadDim());
        assertTrue(c.mla.ropeInterleave());
        assertEquals(64, c.headDim, "HF: config.head_dim = qk_rope_head_dim");
        assertEquals(1e-6, c.normEps);
        assertEquals(256, c.moe.numExperts);
        assertEquals(8, c.moe.topK);
        assertEquals(2048, c.moe.expertSize);
        assertEquals(8, c.moe.nGroup);
        assertEquals(4, c.moe.topkGroup);
        assertEquals(2.5, c.moe.routedScaling);
        assertEquals(2048, c.moe.sharedSize, "n_shared_experts 1 x moe_intermediate_size");
        assertTrue(c.moe.renormalize);
        assertTrue(!c.moe.sparse(2) && c.moe.sparse(3), "first_k_dense_replace 3");
        assertEquals(10000.0, c.layers.get(0).rope().theta());
        assertEquals(List.of(0), c.bosTokenIds);
        assertEquals(List.of(1), c.eosTokenIds);
        assertFalse(c.oBias);
        for (String k : List.of("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim", "qk_nope_head_dim",
                "rope_interleave", "n_group", "routed_scaling_factor"))
            assertTrue(c.defaultsUsed.stream().anyMatch(d -> d.startsWith(k + "=")), k + " in " + c.defaultsUsed);
        assertEquals(1.0 / Math.sqrt(192), c.layers.get(0).attnScale(), 1e-15, "no RoPE scaling: qk_head_dim^-0.5");
    }

    /**
     * DeepSeek-V3's own rope block (factor 40, mscale = mscale_all_dim = 1): the softmax scale is 192^-0.5 times
     * (0.1 ln 40 + 1)^2 = 1.8739; attn.no_yarn_mscale drops it; q_lora_rank null means q_proj.
     */
    @Test
    void yarnMscaleSquaredEntersTheSoftmaxScale() {
        String json = """
                {"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "vocab_size": 40, "q_lora_rank": null, "max_position_embeddings": 163840,
                 "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                 "original_max_position_embeddings": 4096, "type": "yarn"}}
                """;
        ModelConfig c = ModelConfig.parse(tmp.resolve("config.json"), json.getBytes(StandardCharsets.UTF_8));
        assertFalse(c.mla.qLora());
        double m = 1 + 0.1 * Math.log(40);
        assertEquals(m * m / Math.sqrt(192), c.layers.get(0).attnScale(), 1e-15);
        assertEquals(m * m / Math.sqrt(192), Fixes.NONE.mlaScale(c.layers.get(0), c), 1e-15);
        assertEquals(1 / Math.sqrt(192), Fixes.parse("attn.no_yarn_mscale").mlaScale(c.layers.get(0), c), 1e-15);
        assertEquals(1 / Math.sqrt(192), Fixes.parse("rope.scaling_ignored").mlaScale(c.layers.get(0), c), 1e-15);
        assertEquals(0.5, Fixes.parse("attn.scale=0.5").mlaScale(c.layers.get(0), c), 1e-15);
    }

    @Test
    void oddRopeDimIsRefusedNamingTheKey() {
        String json = """
                {"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "vocab_size": 40, "qk_rope_head_dim": 7}
                """;
        BadInputException e = assertThrows(BadInputException.class,
                () -> ModelConfig.parse(tmp.resolve("config.json"), json.getBytes(StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().contains("qk_rope_head_dim"), e.getMessage());
    }

    // ---- lowp:fp32 against the float64 reference ----

    static final TinyDeepseek.Dims SMALL = new TinyDeepseek.Dims(64, 4, 24, 32, 16, 8, 16, 3, 40, 96, 8, 2, 32, 4, 2, 1);

    /**
     * Every probe of lowp:fp32 within fp32 noise of the float64 reference: the bound HfParityTest holds HF's float32
     * runs of the dense fixtures to against float64 (-6.0; their worst probe -6.39). Run with and without q_lora, with
     * interleaved and halves RoPE, under DeepSeek's YaRN. The dense llama fixture's own lowp:fp32 worst probe is
     * printed beside it for scale.
     */
    @Test
    void lowpFp32WithinFp32NoiseOfTheReference() {
        Model llama = Model.open(Fixtures.model("llama"));
        ForwardInput li = new ForwardInput(new int[]{1, 5, 9, 30, 2, 17, 4, 8}, 0);
        double dense = worst(new ReferencePass().run(llama, li, ProbeLevel.ALL),
                new LowpPass(Precision.FP32, Fixes.NONE).run(llama, li, ProbeLevel.ALL));
        int variant = 0;
        for (int qLora : new int[]{24, 0})
            for (boolean interleave : new boolean[]{true, false}) {
                TinyDeepseek.Dims d = new TinyDeepseek.Dims(64, 4, qLora, 32, 16, 8, 16, 3, 40, 96, 8, 2, 32, 4, 2, 1);
                ObjectNode cfg = TinyDeepseek.config(d, interleave, 1e-6);
                TinyDeepseek.yarn(cfg, 4.0, 64);
                Model m = Model.open(TinyDeepseek.write(tmp.resolve("m" + variant++), cfg, d, 7));
                Trace ref = new ReferencePass().run(m, INPUT, ProbeLevel.ALL);
                Trace lowp = new LowpPass(Precision.FP32, Fixes.NONE).run(m, INPUT, ProbeLevel.ALL);
                assertEquals(ref.probeNames(), lowp.probeNames());
                assertEquals(4 * 24, ref.probe("layers.0.q").cols());
                assertEquals(4 * 24, ref.probe("layers.0.k").cols());
                assertEquals(4 * 16, ref.probe("layers.0.v").cols());
                assertEquals(4 * 16, ref.probe("layers.1.attn").cols());
                assertTrue(ref.has("layers.2.router_logits") && ref.has("layers.2.experts"));
                double w = worst(ref, lowp);
                System.out.printf("deepseek_v3 q_lora %d interleave %s: lowp:fp32 vs reference worst probe %.2f "
                        + "(llama fixture: %.2f)%n", qLora, interleave, w, dense);
                assertTrue(w <= -6.0, "worst probe " + w);
            }
    }


    // ---- torch against the float64 reference and lowp ----

    private static void assumeTorch() {
        String reason = modeldiff.forward.torch.TorchRuntime.unavailableReason();
        if (reason != null) System.out.println("SKIPPED torch tests: PyTorch native library unavailable: " + reason);
        org.junit.jupiter.api.Assumptions.assumeTrue(reason == null, () -> "PyTorch native library unavailable: " + reason);
    }

    /**
     * Every probe of torch:fp32 within the fp32 bound the dense fixtures' torch:fp32 is held to against float64
     * (TorchParityTest.FP32_BOUND, -6.0): with and without q_lora, interleaved and halves RoPE, under DeepSeek's YaRN,
     * from position 3 and from position 200 (past original_max_position_embeddings 64, where YaRN's blend and mscale
     * decide every angle).
     */
    @Test
    void torchFp32WithinFp32NoiseOfTheReference() {
        assumeTorch();
        int variant = 0;
        for (ForwardInput in : List.of(INPUT, new ForwardInput(TOKENS, 200)))
            for (int qLora : new int[]{24, 0})
                for (boolean interleave : new boolean[]{true, false}) {
                    TinyDeepseek.Dims d = new TinyDeepseek.Dims(64, 4, qLora, 32, 16, 8, 16, 3, 40, 96, 8, 2, 32, 4, 2, 1);
                    ObjectNode cfg = TinyDeepseek.config(d, interleave, 1e-6);
                    TinyDeepseek.yarn(cfg, 4.0, 64);
                    Model m = Model.open(TinyDeepseek.write(tmp.resolve("t" + variant++), cfg, d, 7));
                    Trace ref = new ReferencePass().run(m, in, ProbeLevel.ALL);
                    Trace torch = new TorchPass(Precision.FP32, Fixes.NONE).run(m, in, ProbeLevel.ALL);
                    assertEquals(ref.probeNames(), torch.probeNames());
                    double w = worst(ref, torch);
                    System.out.printf("deepseek_v3 offset %d q_lora %d interleave %s: torch:fp32 vs reference worst probe %.2f at %s%n",
                            in.positionOffset(), qLora, interleave, w, worstProbe(ref, torch));
                    assertTrue(w <= -6.0, "worst probe " + w);
                }
    }

    /**
     * torch:fp16 rounds where lowp:fp16 (PyTorch's roundings, written out) does: at every probe it is closer to
     * lowp:fp16 than the float64 reference is, and on average over the probes by more than a decade.
     */
    @Test
    void torchFp16RoundsAsLowpFp16() {
        assumeTorch();
        Model m = yarnModel("fp16");
        TorchAgreement.fp16RoundsAsLowp("deepseek_v3", m, INPUT);
    }

    /**
     * Forced by a lowp:fp32 trace, torch:fp32 computes each probe from lowp's input to it: within the fp32 band of
     * TorchTeacherForcingTest (-5) of lowp's own value at every probe.
     */
    @Test
    void torchForcedByLowpTraceStaysWithinFp32Noise() {
        assumeTorch();
        Model m = yarnModel("forced-lowp");
        TorchAgreement.forcedByLowpStaysWithinFp32Noise("deepseek_v3", m, INPUT);
    }

    private static String worstProbe(Trace ref, Trace cand) {
        String at = null;
        double w = Double.NEGATIVE_INFINITY;
        for (String p : ref.probeNames()) {
            double e = p.endsWith(".experts") ? Double.NEGATIVE_INFINITY : Metrics.logL2(ref.probe(p).data(), cand.probe(p).data());
            if (at == null || e > w) {
                w = e;
                at = p;
            }
        }
        return at;
    }

    private static double worst(Trace ref, Trace cand) {
        double w = Double.NEGATIVE_INFINITY;
        for (String p : ref.probeNames()) {
            if (p.endsWith(".experts")) {   // ids: equal or not
                assertEquals(java.util.Arrays.toString(ref.probe(p).data()), java.util.Arrays.toString(cand.probe(p).data()), p);
                continue;
            }
            w = Math.max(w, Metrics.logL2(ref.probe(p).data(), cand.probe(p).data()));
        }
        return w;
    }

    // ---- the catalog's existing ids on deepseek_v3 ----

    private Model yarnModel(String name) {
        ObjectNode cfg = TinyDeepseek.config(SMALL, true, 1e-6);
        TinyDeepseek.yarn(cfg, 4.0, 64);
        return Model.open(TinyDeepseek.write(tmp.resolve(name), cfg, SMALL, 7));
    }

    /**
     * The ids of issue #16 that apply to deepseek_v3 change the float64 reference's run (by more than fp32 noise,
     * somewhere), and lowp:fp32 with the fix stays within fp32 noise (-6.0, as above) of the reference with it.
     */
    @Test
    void catalogIdsActInReferenceAndLowp() {
        Model m = yarnModel("cat");
        Trace clean = new ReferencePass().run(m, INPUT, ProbeLevel.ALL);
        for (String id : List.of("attn.no_yarn_mscale", "rope.yarn_truncate=false", "norm.eps=1e-5", "rope.theta=500000",
                "moe.renormalize=false", "moe.routed_scaling=1", "moe.bias_in_weights")) {
            Fixes fix = Fixes.parse(id);
            Trace ref = new ReferencePass(fix).run(m, INPUT, ProbeLevel.ALL);
            double moved = Double.NEGATIVE_INFINITY;
            for (String p : clean.probeNames())
                if (!p.endsWith(".experts")) moved = Math.max(moved, Metrics.logL2(clean.probe(p).data(), ref.probe(p).data()));
            double lowp = worstIgnoringIds(ref, new LowpPass(Precision.FP32, fix).run(m, INPUT, ProbeLevel.ALL));
            double torch = torchAvailable()
                    ? worstIgnoringIds(ref, new TorchPass(Precision.FP32, fix).run(m, INPUT, ProbeLevel.ALL)) : Double.NaN;
            System.out.printf("%-26s moves the reference by %6.2f; lowp:fp32 with it %6.2f; torch:fp32 with it %6.2f%n",
                    id, moved, lowp, torch);
            assertTrue(moved > -5, id + " changes nothing visible: " + moved);
            assertTrue(lowp <= -6.0, id + ": lowp:fp32 " + lowp);
            assertTrue(Double.isNaN(torch) || torch <= -6.0, id + ": torch:fp32 " + torch);
        }
    }

    private static boolean torchAvailable() {
        String reason = modeldiff.forward.torch.TorchRuntime.unavailableReason();
        if (reason != null) System.out.println("SKIPPED torch checks: PyTorch native library unavailable: " + reason);
        return reason == null;
    }

    private static double worstIgnoringIds(Trace ref, Trace cand) {
        double w = Double.NEGATIVE_INFINITY;
        for (String p : ref.probeNames())
            if (!p.endsWith(".experts")) w = Math.max(w, Metrics.logL2(ref.probe(p).data(), cand.probe(p).data()));
        return w;
    }

    /**
     * Teacher forcing reaches MLA's probes: a teacher whose layer-0 q is all zeros gives every key the same score, so
     * the forced attention output at token t must be the mean of the teacher's v over tokens 0..t (in both passes).
     */
    @Test
    void forcedRunsTakeTheTeachersQkv() {
        Model m = yarnModel("forced");
        Trace ref = new ReferencePass().run(m, INPUT, ProbeLevel.ALL);
        Trace teacher = new Trace("test teacher", "float64", "cpu", TOKENS, INPUT.positionOffset());
        for (String p : ref.probeNames()) {
            double[] d = ref.probe(p).data().clone();
            if (p.equals("layers.0.q")) java.util.Arrays.fill(d, 0);
            teacher.put(p, ref.probe(p).cols(), d);
        }
        double[] v = teacher.probe("layers.0.v").data();
        int T = TOKENS.length, w = teacher.probe("layers.0.v").cols();
        double[] mean = new double[T * w];
        for (int t = 0; t < T; t++)
            for (int j = 0; j < w; j++) {
                double s = 0;
                for (int u = 0; u <= t; u++) s += v[u * w + j];
                mean[t * w + j] = s / (t + 1);
            }
        List<ForwardPass> passes = new java.util.ArrayList<>(List.of(new ReferencePass(), new LowpPass(Precision.FP32, Fixes.NONE)));
        if (torchAvailable()) passes.add(new TorchPass(Precision.FP32, Fixes.NONE));
        for (ForwardPass pass : passes) {
            Trace forced = pass.run(m, ForwardInput.forcedBy(teacher), ProbeLevel.ALL);
            double e = Metrics.logL2(mean, forced.probe("layers.0.attn").data());
            assertTrue(e <= (pass instanceof ReferencePass ? -14 : -6), pass.name() + ": " + e);
        }
    }

    /** The hunt names a fix planted by our own lowp:fp32 run on deepseek_v3 (the search, not the fix's meaning). */
    @Test
    void huntNamesOwnPlantedFixes() {
        Model m = yarnModel("hunt");
        for (String id : List.of("attn.no_yarn_mscale", "moe.bias_in_weights")) {
            Trace target = new LowpPass(Precision.FP32, Fixes.parse(id)).run(m, INPUT, ProbeLevel.ALL);
            modeldiff.hunt.Hunt.Result r = modeldiff.hunt.Hunt.run(m, target, null, null, s -> { });
            assertEquals(modeldiff.hunt.Hunt.Verdict.EXPLAINED, r.verdict(), id + ": " + r.sentence());
            assertEquals(List.of(id), r.best().fixes(), r.sentence());
        }
    }

    // ---- MLA reduces to ordinary attention ----

    /**
     * An exact identity. With rms_norm_eps 0 and unit input_layernorm weights, the attention input has RMS 1, so a
     * latent projection that only permutes it (kv_lora_rank = q_lora_rank = hidden) leaves the latent RMSNorm a constant
     * 1/sqrt(1 + 1e-6) times its weight. MLA then equals a Llama attention whose q/k/v/o weights are folded by hand:
     * each Llama head is [rope | nope] (partial_rotary_factor rope/qk_head_dim rotates its first dims; the interleaved
     * rope rows 2j, 2j+1 move to j, j + rope/2), the one k_pe row block is copied into every head, v heads are padded
     * with zeros from v_head_dim to head_dim and o_proj's columns with them. Every probe from attn_out on, logits
     * included, must agree to float64 rounding; the q/k/v probes differ only by that fixed permutation of columns,
     * which is checked too. Under YaRN the Llama side is given the MLA scale written out here, so the mscale² is
     * checked against its formula.
     */
    @Test
    void mlaEqualsHandFoldedOrdinaryAttention() {
        int variant = 0;
        for (boolean interleave : new boolean[]{true, false})
            for (int qLora : new int[]{64, 0})
                for (boolean yarn : new boolean[]{false, true}) {
                    Path dir = tmp.resolve("id" + variant++);
                    identity(dir, interleave, qLora, yarn);
                }
    }

    private void identity(Path dir, boolean interleave, int qLora, boolean yarn) {
        int H = 64, heads = 4, nope = 24, rope = 8, v = 16, qk = nope + rope, layers = 2, vocab = 40, ff = 96;
        TinyDeepseek.Dims d = new TinyDeepseek.Dims(H, heads, qLora, H, nope, rope, v, layers, vocab, ff, 8, 2, 32, 4, 2, layers);
        ObjectNode cfg = TinyDeepseek.config(d, interleave, 0.0);
        if (yarn) TinyDeepseek.yarn(cfg, 4.0, 64);
        Map<String, long[]> shapes = TinyDeepseek.shapes(d);
        Map<String, double[]> mla = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> mla.put(name, TinyDeepseek.random(name, shape, 11)));
        SplittableRandom r = new SplittableRandom(5);
        double s = Math.sqrt(1 + 1e-6);   // the latent norm's divisor for an input of RMS exactly 1 (its eps is 1e-6)

        ObjectNode lcfg = TinyDeepseek.JSON.createObjectNode();
        lcfg.put("model_type", "llama").put("hidden_size", H).put("intermediate_size", ff).put("num_hidden_layers", layers)
                .put("num_attention_heads", heads).put("num_key_value_heads", heads).put("head_dim", qk)
                .put("vocab_size", vocab).put("hidden_act", "silu").put("rms_norm_eps", 0.0).put("rope_theta", 10000.0)
                .put("partial_rotary_factor", (double) rope / qk).put("max_position_embeddings", 256)
                .put("tie_word_embeddings", false).put("attention_bias", false).put("mlp_bias", false);
        if (yarn) lcfg.set("rope_scaling", cfg.get("rope_scaling").deepCopy());
        Map<String, long[]> lshapes = new LinkedHashMap<>();
        Map<String, double[]> llama = new LinkedHashMap<>();
        for (String n : List.of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) {
            lshapes.put(n, shapes.get(n));
            llama.put(n, mla.get(n));
        }
        int[] ropeRow = new int[rope];   // MLA rope index -> position in the halves layout RoPE sees
        for (int j = 0; j < rope; j++) ropeRow[j] = interleave ? (j % 2 == 0 ? j / 2 : rope / 2 + j / 2) : j;
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".", a = p + "self_attn.";
            java.util.Arrays.fill(mla.get(p + "input_layernorm.weight"), 1.0);
            for (String n : List.of("input_layernorm.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight",
                    "mlp.up_proj.weight", "mlp.down_proj.weight")) {
                lshapes.put(p + n, shapes.get(p + n));
                llama.put(p + n, mla.get(p + n));
            }
            // q: [heads*qk, H] in the MLA layout, as a function of the attention input
            double[] qMla;
            if (qLora > 0) {
                int[] perm = permutation(H, r);
                mla.put(a + "q_a_proj.weight", permutationMatrix(perm));
                qMla = fold(mla.get(a + "q_b_proj.weight"), heads * qk, mla.get(a + "q_a_layernorm.weight"), perm, s);
            } else {
                qMla = mla.get(a + "q_proj.weight");
            }
            int[] kvPerm = permutation(H, r);
            double[] kvA = mla.get(a + "kv_a_proj_with_mqa.weight");           // [H + rope, H]: latent rows, then k_pe
            System.arraycopy(permutationMatrix(kvPerm), 0, kvA, 0, H * H);
            double[] kvB = fold(mla.get(a + "kv_b_proj.weight"), heads * (nope + v), mla.get(a + "kv_a_layernorm.weight"), kvPerm, s);
            double[] q = new double[heads * qk * H], k = new double[heads * qk * H], vv = new double[heads * qk * H];
            double[] o = new double[H * heads * qk], oMla = mla.get(a + "o_proj.weight");
            for (int h = 0; h < heads; h++) {
                for (int j = 0; j < rope; j++) {
                    row(q, h * qk + ropeRow[j], qMla, h * qk + nope + j, H);
                    row(k, h * qk + ropeRow[j], kvA, H + j, H);
                }
                for (int j = 0; j < nope; j++) {
                    row(q, h * qk + rope + j, qMla, h * qk + j, H);
                    row(k, h * qk + rope + j, kvB, h * (nope + v) + j, H);
                }
                for (int j = 0; j < v; j++) {
                    row(vv, h * qk + j, kvB, h * (nope + v) + nope + j, H);
                    for (int x = 0; x < H; x++) o[x * heads * qk + h * qk + j] = oMla[x * heads * v + h * v + j];
                }
            }
            for (var e : Map.of("q_proj", q, "k_proj", k, "v_proj", vv).entrySet()) {
                lshapes.put(a + e.getKey() + ".weight", new long[]{heads * qk, H});
                llama.put(a + e.getKey() + ".weight", e.getValue());
            }
            lshapes.put(a + "o_proj.weight", new long[]{H, heads * qk});
            llama.put(a + "o_proj.weight", o);
        }
        Model mm = Model.open(TinyDeepseek.write(dir.resolve("mla"), cfg, shapes, mla, DType.F64));
        Model lm = Model.open(TinyDeepseek.write(dir.resolve("llama"), lcfg, lshapes, llama, DType.F64));
        double scale = 1 / Math.sqrt(qk) * (yarn ? Math.pow(1 + 0.1 * Math.log(4.0), 2) : 1);
        Trace tm = new ReferencePass().run(mm, INPUT, ProbeLevel.ALL);
        Trace tl = new ReferencePass(Fixes.parse("attn.scale=" + scale)).run(lm, INPUT, ProbeLevel.ALL);
        String what = "interleave " + interleave + ", q_lora " + qLora + ", yarn " + yarn + ": ";
        for (String p : tl.probeNames()) {
            double[] want = tl.probe(p).data(), got = tm.probe(p).data();
            if (p.endsWith(".q") || p.endsWith(".k")) got = headsRopeFirst(got, TOKENS.length, heads, nope, rope);
            if (p.endsWith(".v") || p.endsWith(".attn")) got = padHeads(got, TOKENS.length, heads, v, qk);
            double e = Metrics.logL2(want, got);
            assertTrue(e <= -12, what + p + " log-L2 " + e);
        }
    }

    /** b [rows, H] · diag(w) · P / s, where P maps x to x[perm] (the latent is x permuted). */
    private static double[] fold(double[] b, int rows, double[] w, int[] perm, double s) {
        int H = perm.length;
        double[] out = new double[rows * H];
        for (int o = 0; o < rows; o++)
            for (int c = 0; c < H; c++) out[o * H + perm[c]] += b[o * H + c] * w[c] / s;
        return out;
    }

    private static int[] permutation(int n, SplittableRandom r) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** Row c has its one at column perm[c]: (P x)[c] = x[perm[c]]. */
    private static double[] permutationMatrix(int[] perm) {
        int n = perm.length;
        double[] m = new double[n * n];
        for (int c = 0; c < n; c++) m[c * n + perm[c]] = 1;
        return m;
    }

    private static void row(double[] dst, int dstRow, double[] src, int srcRow, int width) {
        System.arraycopy(src, srcRow * width, dst, dstRow * width, width);
    }

    /** MLA q/k heads [nope | rope] as the folded Llama lays them out: [rope | nope]. */
    private static double[] headsRopeFirst(double[] x, int T, int heads, int nope, int rope) {
        int qk = nope + rope;
        double[] out = new double[x.length];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++) {
                int b = (t * heads + h) * qk;
                System.arraycopy(x, b + nope, out, b, rope);
                System.arraycopy(x, b, out, b + rope, nope);
            }
        return out;
    }

    /** v-wide heads padded with zeros to the Llama head width. */
    private static double[] padHeads(double[] x, int T, int heads, int v, int width) {
        double[] out = new double[T * heads * width];
        for (int r = 0; r < T * heads; r++) System.arraycopy(x, r * v, out, r * width, v);
        return out;
    }

    /**
     * The commands that read a release run on deepseek_v3: info, a clean lint, and compare of lowp:bf16 against the
     * float64 reference (teacher-forced, judged by the bf16 noise floor) with no excess error.
     */
    @Test
    void commandsRunOnDeepseek() {
        Path dir = yarnModel("cli").dir;
        Path out = tmp.resolve("cli-out");
        String[][] commands = {
                {"info", "--model", dir.toString()},
                {"lint", "--model", dir.toString()},
                {"compare", "--model", dir.toString(), "--reference", "reference", "--candidate", "lowp:bf16",
                        "--tokens", "5,17,3,39,0,22", "--json", out.resolve("c.json").toString()}};
        for (String[] args : commands) {
            modeldiff.cli.CliRun run = modeldiff.cli.CliRun.of(args);
            int rc = run.code();
            String text = run.out() + run.err();
            // lint: infos only; compare: teacher-forced lowp:bf16 within the bf16 noise floor of the float64 reference
            assertEquals(0, rc, args[0] + " exit " + rc + ": " + text);
        }
    }

    // ---- cuda takes the family (MLA: CudaAttentionVariants; its experts: CudaMoe); torch runs ----

    @Test
    void cudaTakesTheFamilyTorchRuns() {
        Path dir = TinyDeepseek.write(tmp.resolve("m"), TinyDeepseek.config(SMALL, true, 1e-6), SMALL, 3);
        Model m = Model.open(dir);
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> modeldiff.forward.cuda.CudaPassAccess.refuse(m));
        if (!torchAvailable()) return;
        modeldiff.cli.CliRun torch = modeldiff.cli.CliRun.of("trace", "--model", dir.toString(), "--impl", "torch:fp32", "--tokens",
                "1,2,3", "--out", tmp.resolve("torch-fp32.safetensors").toString());
        assertEquals(0, torch.code(), torch.out() + torch.err());
    }

    /** MLA rotates its qk_rope_head_dim part whole: the catalog does not offer rope.partial, and the passes refuse it. */
    @Test
    void ropePartialIsNotOfferedAndRefused() {
        Path dir = TinyDeepseek.write(tmp.resolve("p"), TinyDeepseek.config(SMALL, true, 1e-6), SMALL, 3);
        Model m = Model.open(dir);
        assertTrue(modeldiff.hunt.Catalog.candidates(m, true, null).stream().noneMatch(id -> id.startsWith("rope.partial")));
        BadInputException e = assertThrows(BadInputException.class,
                () -> new modeldiff.forward.lowp.LowpPass(modeldiff.numeric.Precision.BF16, Fixes.parse("rope.partial=0.5"))
                        .run(m, INPUT, ProbeLevel.ALL));
        assertTrue(e.getMessage().contains("rope.partial"), e.getMessage());
    }
}
