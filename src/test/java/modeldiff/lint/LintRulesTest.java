package modeldiff.lint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.Fixtures;
import modeldiff.model.DType;
import modeldiff.model.SafeTensorsFile;
import modeldiff.model.SafeTensorsWriter;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static modeldiff.lint.Severity.ERROR;
import static modeldiff.lint.Severity.INFO;
import static modeldiff.lint.Severity.WARNING;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One planted release per rule: the rule fires with the right id, severity and evidence. */
class LintRulesTest {
    @TempDir
    Path tmp;

    /** The single finding of this rule and severity (fails when absent or repeated). */
    static Finding one(LintReport r, String rule, Severity s) {
        List<Finding> fs = r.findings().stream().filter(f -> f.rule().equals(rule) && f.severity() == s).toList();
        assertEquals(1, fs.size(), () -> "expected one " + s.id() + " " + rule + " in\n" + r.toText());
        return fs.get(0);
    }

    static void none(LintReport r, String rule) {
        assertTrue(r.byRule(rule).isEmpty(), () -> "unexpected " + rule + " in\n" + r.toText());
    }

    static String rules(LintReport r) {
        return r.findings().stream().map(f -> f.severity().id() + " " + f.rule()).collect(Collectors.joining(", "));
    }

    // ---------------------------------------------------------------- config

    @Test
    void padEqualsEos() {
        LintReport r = Planted.copy("llama", tmp).config(c -> c.put("pad_token_id", 2)).lint();
        Finding f = one(r, Rules.PAD_EQUALS_EOS, WARNING);
        assertEquals(List.of(2), f.evidence().get("pad_token_id"));
        assertEquals(List.of(2), f.evidence().get("eos_token_id"));
        assertFalse(r.hasErrors());
    }

    @Test
    void specialTokenOutOfRange() {
        LintReport r = Planted.copy("llama", tmp).config(c -> c.putArray("eos_token_id").add(2).add(256)).lint();
        Finding f = one(r, Rules.SPECIAL_TOKEN_OUT_OF_RANGE, ERROR);
        assertEquals("eos_token_id", f.evidence().get("key"));
        assertEquals(List.of(256), f.evidence().get("ids"));
        assertEquals(256, f.evidence().get("vocab_size"));
        assertTrue(r.hasErrors());
    }

    @Test
    void slidingWindowOffByOneLikePhi3() {
        LintReport r = Planted.copy("mistral", tmp).config(c -> c.put("sliding_window", 2047)).lint();
        Finding f = one(r, Rules.SLIDING_WINDOW, WARNING);
        assertEquals(2047, f.evidence().get("sliding_window"));
        assertEquals("window=2048", f.fix());
        assertTrue(f.message().contains(Rules.REF_PHI3_WINDOW), f.message());
        assertTrue(f.message().contains(Rules.REF_WINDOW_OFF_BY_ONE), f.message());
    }

    @Test
    void slidingWindowLargerThanContext() {
        LintReport r = Planted.copy("mistral", tmp).config(c -> {
            c.put("sliding_window", 4096);
            c.put("max_position_embeddings", 2048);
        }).lint();
        Finding f = one(r, Rules.SLIDING_WINDOW, WARNING);
        assertEquals(4096, f.evidence().get("sliding_window"));
        assertEquals(2048, f.evidence().get("max_position_embeddings"));
        assertTrue(f.message().contains("larger than the context"), f.message());
    }

    @Test
    void slidingWindowIgnoredWhenNoLayerSlides() {
        // Qwen2 with use_sliding_window false: the key is inert (Qwen2.5 ships 131072 > 32768 this way).
        LintReport r = Planted.copy("qwen2", tmp).config(c -> {
            c.remove("layer_types");
            c.put("sliding_window", 131071);
        }).lint();
        none(r, Rules.SLIDING_WINDOW);
    }

    @Test
    void gemmaExactGeluWithoutHiddenActivation() {
        LintReport r = Planted.copy("gemma", tmp).config(c -> {
            c.remove("hidden_activation");
            c.put("hidden_act", "gelu");
        }).lint();
        Finding f = one(r, Rules.ACTIVATION_CONFLICT, WARNING);
        assertEquals("act.gelu_tanh", f.fix());
        assertEquals("gelu", f.evidence().get("hidden_act"));
        assertTrue(f.message().contains(Rules.REF_GEMMA_GELU));
    }

    @Test
    void gemmaHiddenActDisagreesWithHiddenActivation() {
        LintReport r = Planted.copy("gemma", tmp).config(c -> c.put("hidden_act", "gelu")).lint();
        Finding f = one(r, Rules.ACTIVATION_CONFLICT, WARNING);
        assertEquals("gelu", f.evidence().get("hidden_act"));
        assertEquals("gelu_pytorch_tanh", f.evidence().get("hidden_activation"));
        assertTrue(f.fix().startsWith("act.gelu_exact"), f.fix());
        // gemma2 reads only hidden_activation; a stray hidden_act still disagrees.
        LintReport r2 = Planted.copy("gemma2", tmp).config(c -> c.put("hidden_act", "gelu")).lint();
        one(r2, Rules.ACTIVATION_CONFLICT, WARNING);
    }

    @Test
    void headDimGivenAndInconsistentWithWeights() {
        LintReport r = Planted.copy("mistral", tmp).config(c -> c.put("head_dim", 32)).lint();
        Finding derived = one(r, Rules.HEAD_DIM, WARNING);
        assertEquals(32, derived.evidence().get("head_dim"));
        assertEquals(16, derived.evidence().get("derived"));
        List<Finding> errors = r.byRule(Rules.HEAD_DIM).stream().filter(f -> f.severity() == ERROR).toList();
        assertEquals(2, errors.size(), rules(r));
        assertEquals("model.layers.0.self_attn.q_proj.weight", errors.get(0).evidence().get("tensor"));
        assertEquals(128L, errors.get(0).evidence().get("expected_rows"));
        assertTrue(errors.get(0).message().contains("imply head_dim 16"), errors.get(0).message());
        // q/k explained by the head_dim rule; the rest of the shapes still reported.
        assertTrue(r.byRule(Rules.SHAPE_MISMATCH).stream().noneMatch(f -> f.evidence().get("tensor").equals("model.layers.0.self_attn.q_proj.weight")));
    }

    /**
     * MLA has no single head_dim (DeepSeek-V3's config sets it to the rope part's width): the clean HF fixture is not
     * flagged, and a v_head_dim that disagrees with kv_b_proj's rows (4 heads x (16 + 16) = 128 stored) is.
     */
    @Test
    void mlaRowsAreCheckedAgainstTheirOwnWidths() {
        // (the clean fixture: LintCleanFixturesTest)
        LintReport r = Planted.copy("deepseek_v3", tmp).config(c -> c.put("v_head_dim", 8)).lint();
        List<Finding> errors = r.byRule(Rules.HEAD_DIM).stream().filter(f -> f.severity() == ERROR).toList();
        assertEquals(1, errors.size(), rules(r));
        assertEquals("model.layers.0.self_attn.kv_b_proj.weight", errors.get(0).evidence().get("tensor"));
        assertEquals(96L, errors.get(0).evidence().get("expected_rows"));
    }

    /** gpt-oss's swiglu_limit: HF hard-codes 7, so any other value is a disagreement between implementations. */
    @Test
    void swigluLimitOtherThanHfsIsFlagged() {
        Finding f = one(Planted.copy("gpt_oss", tmp).lint(), Rules.SWIGLU_LIMIT, WARNING);   // the fixture ships 0.5
        assertEquals(0.5, f.evidence().get("swiglu_limit"));
        assertEquals(7.0, f.evidence().get("hf_limit"));
    }

    @Test
    void swigluLimitOfSevenIsClean() {
        none(Planted.copy("gpt_oss", tmp).config(c -> c.put("swiglu_limit", 7.0)).lint(), Rules.SWIGLU_LIMIT);
    }

    @Test
    void headDimOfFamiliesWithTheirOwnDefaultIsNotFlagged() {
        // Gemma's head_dim (32) != hidden/heads (24) by design; the fixture is clean.
        none(Planted.copy("gemma", tmp).lint(), Rules.HEAD_DIM);
    }

    @Test
    void attnScaleUnusual() {
        LintReport r = Planted.copy("gemma2", tmp).config(c -> c.put("query_pre_attn_scalar", 40)).lint();
        Finding f = one(r, Rules.ATTN_SCALE, INFO);
        assertEquals(40.0, f.evidence().get("query_pre_attn_scalar"));
        assertEquals(16, f.evidence().get("head_dim"));
        assertTrue(f.fix().startsWith("attn.scalar=16"));
        none(Planted.copy("gemma3", tmp).lint(), Rules.ATTN_SCALE); // 16 = head_dim
    }

    @Test
    void unknownRopeTypeIsAFindingNotACrash() {
        LintReport r = Planted.copy("llama", tmp).config(c -> ((ObjectNode) c.get("rope_parameters")).put("rope_type", "superrope")).lint();
        Finding load = one(r, Rules.CONFIG_LOAD_FAILED, ERROR);
        assertTrue(load.message().contains("superrope"), load.message());
        Finding rope = one(r, Rules.ROPE_SCALING, ERROR);
        assertEquals("superrope", rope.evidence().get("rope_type"));
        assertEquals("rope_parameters", rope.evidence().get("where"));
        // the weight rules still ran on the raw config
        none(r, Rules.NONFINITE);
        assertTrue(r.hasErrors());
    }

    @Test
    void llama3MissingKeys() {
        LintReport r = Planted.copy("llama", tmp).config(c -> ((ObjectNode) c.get("rope_parameters")).remove("high_freq_factor")).lint();
        Finding f = one(r, Rules.ROPE_SCALING, ERROR);
        assertTrue(f.message().contains("high_freq_factor"), f.message());
        assertEquals("llama3", f.evidence().get("rope_type"));
    }

    @Test
    void llama3ContextNotExtended() {
        LintReport r = Planted.copy("llama", tmp).config(c -> c.put("max_position_embeddings", 1024)).lint();
        Finding f = one(r, Rules.ROPE_SCALING, WARNING);
        assertEquals(1024, f.evidence().get("max_position_embeddings"));
        assertEquals(1024L, f.evidence().get("original_max_position_embeddings"));
    }

    @Test
    void yarnFactorDisagreesWithContextRatio() {
        // Qwen2.5's suggested long-context block: factor 4 against max = original (implied factor 1).
        LintReport r = Planted.copy("qwen2", tmp).config(c -> {
            c.remove("rope_parameters");
            c.put("rope_theta", 1000000.0);
            c.putObject("rope_scaling").put("type", "yarn").put("factor", 4.0).put("original_max_position_embeddings", 8192);
        }).lint();
        Finding f = one(r, Rules.ROPE_SCALING, WARNING);
        assertEquals(4.0, f.evidence().get("factor"));
        assertEquals("rope_scaling", f.evidence().get("where"));
        assertTrue(f.message().contains("= 1"), f.message());
    }

    @Test
    void vocabNotMultipleOf64() {
        Finding f = one(Planted.copy("gpt2", tmp).lint(), Rules.VOCAB_64, INFO);
        assertEquals(288, f.evidence().get("vocab_size"));
        assertEquals(320, f.evidence().get("next_multiple"));
    }

    @Test
    void tiedButStoredLmHeadDiffers() {
        LintReport r = Planted.copy("gemma", tmp).tensors(m -> {
            Planted.Tensor emb = m.get("model.embed_tokens.weight");
            double[] head = emb.values.clone();
            for (int j = 0; j < emb.cols(); j++) {
                head[7 * emb.cols() + j] += 0.5;
                head[300 * emb.cols() + j] = -head[300 * emb.cols() + j];
            }
            m.put("lm_head.weight", new Planted.Tensor(emb.dtype, emb.shape, head));
        }).lint();
        Finding f = one(r, Rules.TIE_MISMATCH, ERROR);
        assertEquals(2, f.evidence().get("differing_rows"));
        assertEquals(List.of(7, 300), f.evidence().get("first_differing_rows"));
    }

    @Test
    void tiedWithIdenticalLmHeadIsFine() {
        LintReport r = Planted.copy("gemma", tmp).tensors(m -> {
            Planted.Tensor emb = m.get("model.embed_tokens.weight");
            m.put("lm_head.weight", new Planted.Tensor(emb.dtype, emb.shape, emb.values.clone()));
        }).lint();
        none(r, Rules.TIE_MISMATCH);
        none(r, Rules.UNEXPECTED);
    }

    @Test
    void untiedWithoutLmHead() {
        LintReport r = Planted.copy("llama", tmp).tensors(m -> m.remove("lm_head.weight")).lint();
        Finding f = one(r, Rules.TIE_MISMATCH, ERROR);
        assertEquals(false, f.evidence().get("tie_word_embeddings"));
        none(r, Rules.MISSING); // said once, by the tie rule
    }

    // ---------------------------------------------------------------- weights

    @Test
    void untrainedEmbeddingAndLmHeadRows() {
        LintReport r = Planted.copy("llama", tmp).tensors(m -> {
            Planted.Tensor emb = m.get("model.embed_tokens.weight");
            emb.row(10, 0);
            emb.row(11, 0);
            emb.row(200, 1e-5); // bf16 "almost zero" (Llama 3 base's rows are ~1e-23 after casting)
            m.get("lm_head.weight").row(255, 0);
        }).lint(1, 5, 200);
        List<Finding> fs = r.byRule(Rules.UNTRAINED_ROWS);
        assertEquals(2, fs.size(), rules(r));
        Finding emb = fs.stream().filter(f -> f.evidence().get("tensor").equals("model.embed_tokens.weight")).findFirst().orElseThrow();
        assertEquals(WARNING, emb.severity());
        assertEquals(List.of(10, 11, 200), emb.evidence().get("rows"));
        assertEquals(3, emb.evidence().get("count"));
        assertTrue(emb.fix().contains("mean of the trained rows"));
        Finding head = fs.stream().filter(f -> f.evidence().get("tensor").equals("lm_head.weight")).findFirst().orElseThrow();
        assertEquals(List.of(255), head.evidence().get("rows"));
        // and the input that uses one of them
        Finding in = one(r, Rules.UNTRAINED_TOKEN, WARNING);
        assertEquals(List.of(200), in.evidence().get("tokens"));
        assertEquals(List.of(2), in.evidence().get("positions"));
    }

    @Test
    void untrainedRowListIsCappedButCounted() {
        LintReport r = Planted.copy("llama", tmp).tensors(m -> {
            for (int i = 100; i < 160; i++) m.get("model.embed_tokens.weight").row(i, 0);
        }).lint();
        Finding f = one(r, Rules.UNTRAINED_ROWS, WARNING);
        assertEquals(60, f.evidence().get("count"));
        assertEquals(32, ((List<?>) f.evidence().get("rows")).size());
    }

    @Test
    void zeroPadRowIsOnlyInfo() {
        LintReport r = Planted.copy("gemma", tmp).tensors(m -> m.get("model.embed_tokens.weight").row(0, 0)).lint(2, 0, 5);
        Finding f = one(r, Rules.UNTRAINED_ROWS, INFO);
        assertEquals(List.of(0), f.evidence().get("pad_rows"));
        one(r, Rules.UNTRAINED_TOKEN, INFO);
        assertFalse(r.hasErrors());
    }

    @Test
    void nanAndInfAreFoundStreaming() {
        Planted p = Planted.copy("llama", tmp).tensors(m -> {
            Planted.Tensor up = m.get("model.layers.1.mlp.up_proj.weight");
            up.values[5] = Double.NaN;
            up.values[up.values.length - 1] = Double.POSITIVE_INFINITY;
            up.values[1000] = Double.NaN;
        });
        for (long chunk : new long[]{LintOptions.DEFAULT_CHUNK_BYTES, 64, 6}) { // 6: chunks of 3 bf16 elements
            LintReport r = p.lint(LintOptions.defaults().withChunkBytes(chunk));
            Finding f = one(r, Rules.NONFINITE, ERROR);
            assertEquals("model.layers.1.mlp.up_proj.weight", f.evidence().get("tensor"));
            assertEquals(2L, f.evidence().get("nan"));
            assertEquals(1L, f.evidence().get("inf"));
            assertEquals(5L, f.evidence().get("first_index"));
            assertEquals(List.of(0L, 5L), f.evidence().get("first_position"));
        }
        none(p.lint(LintOptions.defaults().withNonfinite(false)), Rules.NONFINITE);
    }

    @Test
    void nanInEmbeddingIsFoundEvenWhenSkippingTheFullScan() {
        Planted p = Planted.copy("phi3", tmp).tensors(m -> {
            Planted.Tensor emb = m.get("model.embed_tokens.weight"); // F16
            emb.values[3 * emb.cols() + 4] = Double.NaN;
            m.get("lm_head.weight").values[0] = Double.NEGATIVE_INFINITY;
        });
        for (boolean full : new boolean[]{true, false}) {
            LintReport r = p.lint(LintOptions.defaults().withNonfinite(full).withChunkBytes(200));
            List<Finding> fs = r.byRule(Rules.NONFINITE);
            assertEquals(2, fs.size(), rules(r));
            Map<Object, Finding> byTensor = fs.stream().collect(Collectors.toMap(f -> f.evidence().get("tensor"), f -> f));
            assertEquals(1L, byTensor.get("model.embed_tokens.weight").evidence().get("nan"));
            assertEquals(List.of(3L, 4L), byTensor.get("model.embed_tokens.weight").evidence().get("first_position"));
            assertEquals(1L, byTensor.get("lm_head.weight").evidence().get("inf"));
            // a NaN row is neither trained nor untrained: the row rule stays quiet
            none(r, Rules.UNTRAINED_ROWS);
        }
    }

    @Test
    void nonfiniteInF32AndF16Layers() {
        LintReport r = Planted.copy("qwen2", tmp).tensors(m -> {
            m.get("model.layers.0.self_attn.q_proj.bias").values[3] = Double.NaN; // F32
            Planted.Tensor n = m.get("model.norm.weight");
            n.dtype = DType.F16;
            n.values[0] = 1e6; // overflows binary16 to Inf when stored
        }).lint();
        List<Finding> fs = r.byRule(Rules.NONFINITE);
        assertEquals(2, fs.size(), rules(r));
        assertTrue(fs.stream().anyMatch(f -> f.evidence().get("tensor").equals("model.norm.weight") && f.evidence().get("inf").equals(1L)));
    }

    @Test
    void declaredDtypeDiffersFromStored() {
        LintReport r = Planted.copy("llama", tmp).config(c -> {
            c.remove("dtype");
            c.put("torch_dtype", "float16");
        }).lint();
        Finding f = one(r, Rules.DTYPE_MISMATCH, WARNING);
        assertEquals("float16", f.evidence().get("declared"));
        assertEquals("bfloat16", f.evidence().get("stored"));
    }

    @Test
    void mixedStorageIsInfo() {
        LintReport r = Planted.copy("llama", tmp).tensors(m -> m.get("model.norm.weight").dtype = DType.F32).lint();
        Finding f = one(r, Rules.DTYPE_MISMATCH, INFO);
        assertEquals(List.of("model.norm.weight"), f.evidence().get("tensors"));
        none(r, Rules.NONFINITE);
    }

    @Test
    void unexpectedAndMissingTensors() {
        LintReport r = Planted.copy("llama", tmp).tensors(m -> {
            m.remove("model.layers.1.mlp.down_proj.weight");
            m.put("model.layers.0.self_attn.q_norm.weight", new Planted.Tensor(DType.BF16, new long[]{16}, new double[16]));
            m.put("model.layers.0.self_attn.rotary_emb.inv_freq", new Planted.Tensor(DType.F32, new long[]{8}, new double[8]));
        }).lint();
        Finding missing = one(r, Rules.MISSING, ERROR);
        assertEquals(List.of("model.layers.1.mlp.down_proj.weight"), missing.evidence().get("tensors"));
        Finding unexpected = one(r, Rules.UNEXPECTED, WARNING);
        assertEquals(List.of("model.layers.0.self_attn.q_norm.weight"), unexpected.evidence().get("tensors"));
        Finding buffer = one(r, Rules.UNEXPECTED, INFO);
        assertEquals(List.of("model.layers.0.self_attn.rotary_emb.inv_freq"), buffer.evidence().get("tensors"));
    }

    @Test
    void shapeMismatchIsReportedPerTensor() {
        LintReport r = Planted.copy("llama", tmp).config(c -> c.put("intermediate_size", 96)).lint();
        List<Finding> fs = r.byRule(Rules.SHAPE_MISMATCH);
        assertEquals(3 * 3, fs.size(), rules(r)); // gate, up, down in 3 layers
        assertTrue(fs.stream().allMatch(f -> f.severity() == ERROR));
    }

    // ---------------------------------------------------------------- input

    @Test
    void missingBosForAFamilyThatNeedsIt() {
        LintReport r = Planted.copy("gemma", tmp).lint(5, 6, 7);
        Finding f = one(r, Rules.MISSING_BOS, ERROR);
        assertEquals("input.add_bos", f.fix());
        assertEquals(5, f.evidence().get("first_token"));
        none(Planted.copy("llama", tmp).lint(5, 6, 7), Rules.MISSING_BOS); // llama: no requirement, no tokenizer saying so
    }

    @Test
    void missingBosIsInfoWhenOnlyTheTokenizerAddsIt() {
        LintReport r = Planted.copy("llama", tmp).json("tokenizer_config.json", t -> t.put("add_bos_token", true)).lint(5, 6);
        assertEquals("input.add_bos", one(r, Rules.MISSING_BOS, INFO).fix());
    }

    @Test
    void doubleBos() {
        LintReport r = Planted.copy("gemma", tmp).lint(2, 2, 9);
        Finding f = one(r, Rules.DOUBLE_BOS, WARNING);
        assertEquals("input.drop_bos", f.fix());
        assertEquals(List.of(2, 2), f.evidence().get("first_tokens"));
    }

    @Test
    void tokenOutOfRange() {
        Finding f = one(Planted.copy("llama", tmp).lint(1, 7, 300, -1), Rules.TOKEN_OUT_OF_RANGE, ERROR);
        assertEquals(List.of(300, -1), f.evidence().get("tokens"));
        assertEquals(List.of(2, 3), f.evidence().get("positions"));
    }

    @Test
    void tokensFromATrace() throws IOException {
        int[] tokens = TraceFiles.read(Fixtures.trace("gemma", "hf-float64.safetensors")).tokens();
        LintReport r = Planted.copy("gemma", tmp).lint(tokens);
        none(r, Rules.MISSING_BOS);
        assertFalse(r.hasErrors());
        assertTrue(Files.exists(Fixtures.trace("gemma", "hf-float64.safetensors")));
    }

    // ---------------------------------------------------------------- tokenizer / generation

    @Test
    void tokenizerConfigRules() {
        LintReport r = Planted.copy("gemma", tmp).resource("gemma-tokenizer_config-bad.json", "tokenizer_config.json").lint();
        Finding addBos = one(r, Rules.TOK_ADD_BOS_DISABLED, WARNING);
        assertEquals("input.add_bos", addBos.fix());
        one(r, Rules.TOK_PAD_EQUALS_EOS, WARNING);
        Finding bos = one(r, Rules.TOK_BOS_MISMATCH, WARNING);
        assertEquals(5, bos.evidence().get("tokenizer_id"));
        assertEquals(List.of(2), bos.evidence().get("config_ids"));
        Finding eos = one(r, Rules.TOK_EOS_MISMATCH, WARNING);
        assertEquals(6, eos.evidence().get("tokenizer_id"));
        Finding range = one(r, Rules.TOK_OUT_OF_RANGE, ERROR);
        assertEquals(List.of(400), range.evidence().get("ids"));

        LintReport good = Planted.copy("gemma2", tmp).resource("gemma-tokenizer_config-good.json", "tokenizer_config.json").lint();
        assertTrue(good.findings().stream().noneMatch(f -> f.rule().startsWith("tokenizer.")), rules(good));
    }

    @Test
    void addBosDisabledIsInfoWhenTheChatTemplateWritesBos() {
        LintReport r = Planted.copy("gemma", tmp).json("tokenizer_config.json", t -> {
            t.put("add_bos_token", false);
            t.put("chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}");
        }).lint();
        one(r, Rules.TOK_ADD_BOS_DISABLED, INFO);
    }

    @Test
    void generationConfigRules() {
        LintReport superset = Planted.copy("llama", tmp).json("generation_config.json", g -> g.putArray("eos_token_id").add(2).add(7)).lint();
        assertEquals(List.of(2, 7), one(superset, Rules.GEN_EOS_MISMATCH, INFO).evidence().get("generation_eos"));

        Path other = tmp.resolve("other");
        LintReport r = Planted.copy("llama", other).json("generation_config.json", g -> {
            g.put("eos_token_id", 7);
            g.put("bos_token_id", 3);
            g.put("pad_token_id", 999);
        }).lint();
        one(r, Rules.GEN_EOS_MISMATCH, WARNING);
        Finding bos = one(r, Rules.GEN_BOS_MISMATCH, WARNING);
        assertEquals(List.of(3), bos.evidence().get("generation_bos"));
        Finding range = one(r, Rules.GEN_OUT_OF_RANGE, ERROR);
        assertEquals("pad_token_id", range.evidence().get("key"));
    }

    // ---------------------------------------------------------------- unreadable releases

    @Test
    void brokenConfigJsonStillLintsTheWeights() {
        Planted p = Planted.copy("llama", tmp).tensors(m -> m.get("model.norm.weight").values[1] = Double.NaN);
        try {
            Files.writeString(p.dir.resolve("config.json"), "{ \"model_type\": \"llama\", ");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        LintReport r = p.lint();
        Finding f = one(r, Rules.CONFIG_LOAD_FAILED, ERROR);
        assertTrue(f.message().contains("not valid JSON"), f.message());
        assertEquals("model.norm.weight", one(r, Rules.NONFINITE, ERROR).evidence().get("tensor"));
    }

    @Test
    void corruptSafetensorsHeaderIsAFinding() throws IOException {
        Planted p = Planted.copy("llama", tmp);
        byte[] b = Files.readAllBytes(p.dir.resolve("model.safetensors"));
        b[0] = (byte) 0xff;
        b[7] = (byte) 0x7f; // absurd header length
        Files.write(p.dir.resolve("model.safetensors"), b);
        LintReport r = p.lint();
        Finding f = one(r, Rules.WEIGHTS_LOAD_FAILED, ERROR);
        assertNotNull(f.message());
        assertTrue(f.message().contains("header"), f.message());
    }

    @Test
    void shardedReleaseWithNanInOneShard() {
        Planted p = Planted.copy("llama-sharded", tmp);
        Path shard = p.dir.resolve("model-00003-of-00004.safetensors");
        SafeTensorsFile f = SafeTensorsFile.open(shard);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        String victim = null;
        for (TensorInfo t : f.tensors().values()) {
            double[] v = TensorStore.readDoubles(t, 0, t.elementCount());
            if (victim == null && t.rank() == 2) {
                victim = t.name();
                v[v.length - 2] = Double.NaN;
            }
            w.add(t.name(), t.dtype(), t.shape(), v);
        }
        w.write(shard);
        for (int threads : new int[]{1, 2}) {
            LintReport r = p.lint(new LintOptions(null, true, 32, 100, threads));
            Finding nan = one(r, Rules.NONFINITE, ERROR);
            assertEquals(victim, nan.evidence().get("tensor"));
            assertEquals(1L, nan.evidence().get("nan"));
        }
        LintReport clean = Planted.lintUnchanged(Fixtures.model("llama-sharded"), LintOptions.defaults().withChunkBytes(100));
        assertFalse(clean.hasErrors(), clean.toText());
    }
}
