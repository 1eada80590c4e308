package modeldiff.hunt;

import modeldiff.forward.Fixes;
import modeldiff.model.Family;
import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.RopeSpec;
import modeldiff.numeric.Activation;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The candidate fixes the hunt tries: what each means, where it applies, which passes honour it, and the real bug it
 * mirrors. Numeric fixes get candidate values generated from the model (never the config's own value).
 */
public final class Catalog {
    private Catalog() {
    }

    /** Which of our configurable passes can express a fix. */
    public enum Honoured { BOTH, LOWP_ONLY }

    public record Entry(String id, String meaning, String appliesTo, Honoured honouredBy, String source) {
    }

    public static final List<Entry> ENTRIES = List.of(
            new Entry("act.gelu_exact", "GELU computed with erf instead of the tanh approximation the config names",
                    "configs naming a tanh GELU", Honoured.BOTH, "https://github.com/huggingface/transformers/pull/29402"),
            new Entry("act.gelu_tanh", "GELU computed with the tanh approximation instead of the exact erf the config names",
                    "configs naming exact GELU", Honoured.BOTH, "https://github.com/tinygrad/tinygrad/pull/16162"),
            new Entry("rope.bf16_angles", "RoPE angles from positions and inverse frequencies rounded to bf16",
                    "RoPE families", Honoured.BOTH, "https://github.com/huggingface/transformers/pull/29285"),
            new Entry("rope.theta=V", "RoPE base V instead of the config's", "RoPE families", Honoured.BOTH, "https://github.com/meta-pytorch/gpt-fast/issues/179"),
            new Entry("rope.scaling_ignored", "the config's rope scaling / rope type not applied",
                    "configs with a rope type other than default", Honoured.BOTH, "https://github.com/unslothai/unsloth/pull/6197"),
            new Entry("rope.partial=F", "rotary fraction F instead of the config's", "RoPE families", Honoured.BOTH, "https://github.com/AI-Hypercomputer/maxtext/issues/4616"),
            new Entry("rope.inv_freq_lowp", "RoPE inverse frequencies stored in the activation dtype (.to(dtype) rounds that buffer)",
                    "RoPE families, bf16/fp16 targets", Honoured.LOWP_ONLY, "https://github.com/huggingface/transformers/issues/25681"),
            new Entry("qk.interleaved", "q/k rotated as interleaved pairs (GPT-J / Meta layout) instead of rotate_half",
                    "RoPE families", Honoured.BOTH, "https://github.com/huggingface/transformers/issues/25199"),
            new Entry("norm.no_unit_offset", "a (1+w) norm computed as w·x̂", "Gemma, Nemotron (unit-offset norms)", Honoured.BOTH, "https://github.com/linkedin/Liger-Kernel/issues/74"),
            new Entry("norm.unit_offset", "a w·x̂ norm computed as (1+w)·x̂ (the double +1)", "families with plain norm weights", Honoured.BOTH, "https://github.com/utensils/mold/pull/1078"),
            new Entry("norm.cast_before_weight", "Llama-style cast to the activation dtype before the weight multiply, in a family that casts after",
                    "Gemma family, bf16/fp16 targets", Honoured.LOWP_ONLY, "https://github.com/huggingface/transformers/pull/29402"),
            new Entry("norm.eps=V", "norm epsilon V", "every family", Honoured.BOTH, "https://github.com/ggml-org/llama.cpp/issues/2373"),
            new Entry("embed.scale_fp32", "embedding scale kept in fp32 instead of rounded to the dtype",
                    "Gemma family, bf16/fp16 targets", Honoured.LOWP_ONLY, "https://unsloth.ai/blog/gemma-bugs"),
            new Entry("embed.scale_none", "embedding scale sqrt(hidden) not applied", "Gemma family", Honoured.BOTH, "https://github.com/SamLynnEvans/Transformer/issues/10"),
            new Entry("attn.no_softcap", "attention soft-capping not applied", "configs with attn_logit_softcapping", Honoured.BOTH, "https://github.com/huggingface/transformers/pull/32865"),
            new Entry("logits.no_softcap", "final logit soft-capping not applied", "configs with final_logit_softcapping", Honoured.BOTH, "https://github.com/keras-team/keras-hub/pull/1712"),
            new Entry("attn.scalar=S", "attention scores scaled by 1/sqrt(S) (HF's query_pre_attn_scalar) instead of the config's scale", "every family", Honoured.BOTH, "https://github.com/huggingface/transformers/issues/31891"),
            new Entry("window=W", "sliding window W instead of the config's", "configs with sliding layers", Honoured.BOTH, "https://github.com/huggingface/transformers/issues/39408"),
            new Entry("softmax.lowp", "attention softmax computed in the activation dtype", "bf16/fp16 targets", Honoured.LOWP_ONLY, "https://github.com/huggingface/transformers/pull/17437"),
            new Entry("mlp.swap_gate_up", "a fused gate/up projection split in the wrong order", "fused gate_up_proj (Phi-3)", Honoured.BOTH, "https://github.com/nntrainer/nntrainer/pull/4194"),
            new Entry("input.add_bos", "a BOS token prepended", "tokens without BOS (not huntable from a trace: it changes the token count)", Honoured.BOTH, "https://github.com/ggml-org/llama.cpp/pull/21500"),
            new Entry("input.drop_bos", "the leading BOS removed", "tokens starting with BOS (not huntable from a trace: it changes the token count)", Honoured.BOTH, "https://github.com/ggml-org/llama.cpp/pull/7332"),
            new Entry("rope.nope_inverted", "no_rope_layers read with the wrong polarity (1 taken as 'skip RoPE'; HF: 1 = use RoPE)",
                    "families with NoPE layers (SmolLM3)", Honoured.BOTH, "https://github.com/onnxruntime/mobius/pull/233"),
            new Entry("rope.longrope_factors=short", "LongRoPE short factors whatever the input's length (HF: long once it exceeds original_max_position_embeddings)",
                    "longrope configs", Honoured.BOTH, "https://github.com/mlc-ai/mlc-llm/pull/3375"),
            new Entry("rope.longrope_factors=long", "LongRoPE long factors whatever the input's length (chosen from the allocated context, not the sequence)",
                    "longrope configs", Honoured.BOTH, "https://github.com/ggml-org/llama.cpp/issues/24823"),
            new Entry("block.sequential", "a parallel-residual block (x + attn(ln1 x) + mlp(ln2 x)) computed sequentially",
                    "configs with use_parallel_residual true (GPT-NeoX, Pythia)", Honoured.BOTH, "https://github.com/ml-explore/mlx-lm/pull/586"),
            new Entry("qk_norm.per_head", "a whole-projection q/k norm (OLMo 2) taken per head",
                    "families whose q/k norm spans heads x head_dim", Honoured.BOTH, "https://github.com/vllm-project/vllm-metal/issues/767"),
            new Entry("rope.scaling_all_layers", "the full-attention layers' rope scaling applied to the sliding layers too",
                    "configs whose layer types differ in rope scaling (Gemma 3)", Honoured.BOTH, "https://github.com/antonellof/ferrox/issues/39"),
            new Entry("moe.renormalize=true", "MoE routing weights renormalised over the chosen k although the config says not to (norm_topk_prob false)",
                    "MoE families that do not renormalise (OLMoE, Qwen-MoE with norm_topk_prob false)", Honoured.BOTH, "https://github.com/lablup/mlxcel/pull/391"),
            new Entry("moe.renormalize=false", "MoE routing weights left as softmax-over-all probabilities although the config renormalises them over the k",
                    "MoE families that renormalise (Mixtral, norm_topk_prob true)", Honoured.BOTH, "https://github.com/pytorch/torchtitan/issues/1448"),
            new Entry("moe.softmax_before_topk", "a top-k→softmax router computed as softmax over all experts, then top-k",
                    "top-k→softmax routers (gpt-oss)", Honoured.BOTH, "https://github.com/pytorch/torchtitan/issues/2258"),
            new Entry("moe.routed_scaling=V", "routed experts' weights multiplied by V instead of the config's routed_scaling_factor (1 when absent)",
                    "MoE families", Honoured.BOTH, "https://github.com/sgl-project/sglang-jax/pull/1282"),
            new Entry("attn.no_sinks", "attention sinks (a learned per-head logit in every softmax) not applied",
                    "families with attention sinks (gpt-oss)", Honoured.BOTH, "https://github.com/vllm-project/vllm/issues/28660"),
            new Entry("mlp.no_clamp", "gpt-oss's clamped SwiGLU computed without its clamp (swiglu_limit not honoured)",
                    "gpt-oss experts", Honoured.BOTH, "https://github.com/sgl-project/sglang/pull/39939"),
            new Entry("qk_norm.off", "the q/k norms not applied", "families with q/k norms (Qwen3, Gemma 3, OLMoE, Llama 4)",
                    Honoured.BOTH, "https://github.com/vllm-project/vllm/issues/16311"),
            new Entry("rope.yarn_truncate=true", "YaRN's correction range truncated to integers although the config says truncate false",
                    "YaRN rope with truncate false (gpt-oss)", Honoured.BOTH, "https://github.com/vllm-project/vllm/issues/27722"),
            new Entry("rope.yarn_truncate=false", "YaRN's correction range left fractional although the config truncates it",
                    "YaRN rope with truncate true (the default)", Honoured.BOTH, "https://github.com/vllm-project/vllm/issues/27722"),
            new Entry("attn.no_yarn_mscale", "YaRN's attention factor (mscale) not applied to cos/sin (so not to the scores); in MLA also the mscale² of the softmax scale",
                    "YaRN rope (DeepSeek-V3 MLA: the softmax scale's mscale²)", Honoured.BOTH, "https://github.com/huggingface/transformers/issues/47435"),
            new Entry("attn.no_chunking", "Llama 4's chunked attention (attention_chunk_size on the RoPE layers) computed as full causal attention",
                    "Llama 4 (chunked_attention layers)", Honoured.BOTH, "https://github.com/huggingface/transformers/issues/37351"),
            new Entry("attn.no_temperature_tuning", "Llama 4's attention temperature tuning (q scaled by log1p(floor((pos+1)/floor_scale))·attn_scale + 1 on NoPE layers) not applied",
                    "Llama 4 with attn_temperature_tuning", Honoured.BOTH, "https://github.com/ggml-org/llama.cpp/issues/17239"),
            new Entry("moe.bias_in_weights", "a sigmoid router's selection-only correction bias (e_score_correction_bias) also added to the expert weights",
                    "sigmoid routers with a correction bias (DeepSeek-V3, GLM-4.5)", Honoured.BOTH, "https://github.com/vllm-project/vllm/issues/12002"));

    public static Entry entry(String fixId) {
        int eq = fixId.indexOf('=');
        String key = eq < 0 ? fixId : fixId.substring(0, eq) + "=";
        for (Entry e : ENTRIES) if (e.id.equals(fixId)) return e;
        for (Entry e : ENTRIES) if (eq >= 0 && e.id.startsWith(key)) return e;
        return null;
    }

    /**
     * Every fix worth trying on this model: applicable ones, numeric ones with values generated from the model minus
     * the config's own. {@code lowp} is whether the base pass honours rounding-only fixes.
     */
    public static List<String> candidates(Model model, boolean lowp, Set<String> only) {
        ModelConfig c = model.config;
        Family f = model.family;
        Set<String> out = new LinkedHashSet<>();
        if (c.activation == Activation.GELU_TANH) out.add("act.gelu_exact");
        if (c.activation == Activation.GELU_EXACT) out.add("act.gelu_tanh");
        if (!f.learnedPositions) {
            out.add("rope.bf16_angles");
            Set<Double> thetas = new LinkedHashSet<>(), partials = new LinkedHashSet<>();
            boolean scaled = false;
            for (LayerSpec l : c.layers) {
                thetas.add(l.rope().theta());
                partials.add(l.rope().partialRotaryFactor());
                scaled |= !l.rope().type().equals("default");
            }
            for (double v : new double[]{1e4, 5e5, 1e6, 1e7}) if (!thetas.contains(v)) out.add("rope.theta=" + fmt(v));
            if (scaled) out.add("rope.scaling_ignored");
            // LongRoPE carries one factor per rotated pair: another rotary fraction is not a config HF would accept.
            boolean longrope = c.layers.stream().anyMatch(l -> l.rope().type().equals("longrope"));
            // MLA rotates a part of its own (qk_rope_head_dim), not a fraction of the head: rope.partial has no meaning there.
            if (!longrope && c.mla == null)
                for (double v : new double[]{0.25, 0.5, 1.0}) if (!partials.contains(v)) out.add("rope.partial=" + fmt(v));
            if (lowp) out.add("rope.inv_freq_lowp");
            out.add("qk.interleaved");
        }
        out.add(f.norm.unitOffset() ? "norm.no_unit_offset" : "norm.unit_offset");
        if (lowp && f.normCast == Family.NormCast.WEIGHT_THEN_CAST && !f.norm.centered()) out.add("norm.cast_before_weight");
        for (double v : new double[]{1e-5, 1e-6}) if (v != c.normEps) out.add("norm.eps=" + fmt(v));
        if (c.embedScale != 1.0) {
            if (lowp) out.add("embed.scale_fp32");
            out.add("embed.scale_none");
        }
        if (!Double.isNaN(c.attnSoftcap)) out.add("attn.no_softcap");
        if (!Double.isNaN(c.finalSoftcap)) out.add("logits.no_softcap");
        Set<Double> scales = new LinkedHashSet<>();
        for (LayerSpec l : c.layers) scales.add(l.attnScale());
        for (double s : new double[]{c.headDim, (double) c.hiddenSize / c.numHeads, queryPreAttnScalar(c)})
            if (s > 0 && !containsClose(scales, 1 / Math.sqrt(s))) out.add("attn.scalar=" + fmt(s));
        int window = 0;
        for (LayerSpec l : c.layers) if (l.sliding()) window = l.slidingWindow();
        if (window > 0) {
            Set<Integer> ws = new LinkedHashSet<>(List.of(window - 1, window + 1, Integer.highestOneBit(window), Integer.highestOneBit(window) * 2));
            ws.remove(window);
            for (int w : ws) if (w > 0) out.add("window=" + w);
        }
        if (lowp) out.add("softmax.lowp");
        if (f.layout == Family.Layout.PHI3) out.add("mlp.swap_gate_up");
        addDenseCandidates(c, out);
        if (c.moe != null) moeCandidates(c.moe, out);
        if (f.attentionSinks) out.add("attn.no_sinks");
        if (f.qkNorm || c.layers.stream().anyMatch(l -> l.llama4() != null && l.llama4().l2Norm())) out.add("qk_norm.off");
        if (c.layers.stream().anyMatch(l -> l.llama4() != null && l.llama4().chunk() > 0)) out.add("attn.no_chunking");
        if (c.layers.stream().anyMatch(l -> l.llama4() != null && l.llama4().tempScale() > 0)) out.add("attn.no_temperature_tuning");
        for (LayerSpec l : c.layers)
            if (l.rope() != null && l.rope().type().equals("yarn")) {
                out.add("rope.yarn_truncate=" + !l.rope().truncate());
                out.add("attn.no_yarn_mscale");
                break;
            }
        if (f.moe != null && f.moe.names() == Family.GPT_OSS_EXPERTS) out.add("mlp.no_clamp");
        // A value the caller names (--fixes norm.eps=0.001) is tried even where the catalog would not generate it.
        if (only != null) for (String id : only) if (id.contains("=")) out.add(id);
        List<String> list = new ArrayList<>();
        for (String id : out) {
            if (only != null && !only.contains(id) && !only.contains(id.contains("=") ? id.substring(0, id.indexOf('=')) : id)) continue;
            Fixes.parse(id); // every generated id must be a valid fix
            list.add(id);
        }
        return list;
    }

    /** Where the ids of the 2024-26 dense families apply: NoPE layers, LongRoPE, parallel blocks, full q/k norms, per-type scaling. */
    private static void addDenseCandidates(ModelConfig c, Set<String> out) {
        Family f = c.family;
        if (f.learnedPositions) {
            if (c.parallelResidual) out.add("block.sequential");
            return;
        }
        if (f.noRopeLayers) out.add("rope.nope_inverted");
        if (c.layers.stream().anyMatch(l -> l.rope().type().equals("longrope"))) {
            out.add("rope.longrope_factors=short");
            out.add("rope.longrope_factors=long");
        }
        if (c.parallelResidual) out.add("block.sequential");
        if (f.qkNorm && f.qkNormScope == Family.QkNormScope.FULL) out.add("qk_norm.per_head");
        RopeSpec full = c.fullAttentionRope;
        if (full != null && !full.type().equals("default")
                && c.layers.stream().anyMatch(l -> l.sliding() && !l.rope().type().equals(full.type())))
            out.add("rope.scaling_all_layers");
    }

    /**
     * The routing switches that mean something for this router; scales: 1 (a factor dropped) and 2.5 (DeepSeek-V3's
     * and GLM-4.5's routed_scaling_factor applied where none belongs), minus the config's own.
     */
    private static void moeCandidates(modeldiff.model.MoeSpec m, Set<String> out) {
        out.add("moe.renormalize=" + !m.renormalize);
        if (m.router == Family.Router.TOPK_SOFTMAX) out.add("moe.softmax_before_topk");
        if (m.router == Family.Router.SIGMOID_GROUPED) out.add("moe.bias_in_weights");
        for (double v : new double[]{1.0, 2.5}) if (v != m.routedScaling) out.add("moe.routed_scaling=" + fmt(v));
    }

    private static double queryPreAttnScalar(ModelConfig c) {
        var n = c.raw.get("query_pre_attn_scalar");
        return n != null && n.isNumber() ? n.asDouble() : -1;
    }

    private static boolean containsClose(Set<Double> set, double v) {
        for (double d : set) if (Math.abs(d - v) <= 1e-12 * Math.abs(v)) return true;
        return false;
    }

    /** Numbers as fix values: integers without ".0", others in the shortest exact form. */
    static String fmt(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return java.math.BigDecimal.valueOf(v).stripTrailingZeros().toString().replace("E", "e").replace("e+", "e");
    }

    /** Two fixes that cannot hold together (same key with different values, or opposite switches). */
    public static boolean conflict(String a, String b) {
        String ka = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
        String kb = b.contains("=") ? b.substring(0, b.indexOf('=')) : b;
        if (ka.equals(kb)) return true;
        Set<String> pair = Set.of(ka, kb);
        return pair.equals(Set.of("act.gelu_exact", "act.gelu_tanh")) || pair.equals(Set.of("norm.unit_offset", "norm.no_unit_offset"))
                || pair.equals(Set.of("embed.scale_fp32", "embed.scale_none")) || pair.equals(Set.of("input.add_bos", "input.drop_bos"));
    }

    /** The first layer a fix can change: -1 = the embedding, numLayers = only the final norm / logits. */
    public static int firstLayerAffected(String fix, ModelConfig c) {
        if (fix.startsWith("embed.") || fix.startsWith("input.")) return -1;
        if (fix.equals("logits.no_softcap")) return c.numLayers;
        if (fix.equals("rope.scaling_all_layers")) {
            for (LayerSpec l : c.layers) if (l.sliding()) return l.index();
            return c.numLayers;
        }
        if (fix.startsWith("moe.") && c.moe != null) {
            for (int i = 0; i < c.numLayers; i++) if (c.moe.sparse(i)) return i;
            return c.numLayers;
        }
        if (fix.startsWith("window=")) {
            for (LayerSpec l : c.layers) if (l.sliding()) return l.index();
            return c.numLayers;
        }
        return 0;
    }
}
