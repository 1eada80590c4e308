package modeldiff.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * How one architecture family computes, as data. Every forward pass walks the same generic decoder and asks its
 * {@link Family} what to do at each step; a new family is a few lines here, written as its differences from the family
 * it descends from (as HF's modular_*.py files do), never a copy of a transformer.
 *
 * Each field mirrors a line of HF transformers' modeling_*.py for that family.
 */
public final class Family {

    /** Where the weights live in the checkpoint. */
    public enum Layout {
        /** model.layers.{i}.self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj. */
        LLAMA,
        /** Phi-3: fused self_attn.qkv_proj and mlp.gate_up_proj (gate first). */
        PHI3,
        /** GPT-2: transformer.h.{i}.attn.c_attn (Conv1D, weight stored [in, out]), learned positions wpe. */
        GPT2,
        /**
         * GPT-NeoX / Pythia: gpt_neox.layers.{i}.attention.query_key_value fused with rows laid out [heads, 3, head_dim],
         * attention.dense, mlp.dense_h_to_4h / dense_4h_to_h, embed_in, final_layer_norm, embed_out.
         */
        NEOX
    }

    /** What a q/k norm normalises over. */
    public enum QkNormScope {
        /** Qwen3, Gemma 3: RMSNorm over head_dim, one weight of head_dim shared by the heads. */
        HEAD,
        /** OLMo 2: RMSNorm over the whole projection (heads · head_dim) before the head split. */
        FULL
    }

    public enum NormKind {
        /** x / rms(x) · w. */
        RMS,
        /** x / rms(x) · (1 + w): Gemma stores the offset from one. */
        RMS_UNIT_OFFSET,
        /** (x − mean) / std · w + b. */
        LAYER,
        /** LayerNorm1P (Nemotron): (x − mean) / std · (1 + w) + b. */
        LAYER_UNIT_OFFSET;

        public boolean unitOffset() {
            return this == RMS_UNIT_OFFSET || this == LAYER_UNIT_OFFSET;
        }

        public boolean centered() {
            return this == LAYER || this == LAYER_UNIT_OFFSET;
        }
    }

    /**
     * Where a reduced-precision run rounds inside an RMSNorm. Llama: {@code w * x̂.to(dtype)} (round, then multiply);
     * Gemma: {@code (x̂ * (1 + w.float())).to(dtype)} (multiply in fp32, round once). See HF PR #29402.
     */
    public enum NormCast { CAST_THEN_WEIGHT, WEIGHT_THEN_CAST }

    public enum Mlp {
        /** down(act(gate(x)) · up(x)). */
        GATED,
        /** proj(act(fc(x))). */
        PLAIN
    }

    public enum Bias { NONE, ALWAYS, FROM_CONFIG }

    /** How a mixture-of-experts router turns its logits into chosen experts and their weights. */
    public enum Router {
        /** softmax over all experts, top-k of it, optionally renormalised over the k (Mixtral, Qwen3-MoE, OLMoE). */
        SOFTMAX_TOPK,
        /** top-k of the logits, softmax over those k (gpt-oss). */
        TOPK_SOFTMAX,
        /**
         * sigmoid scores; a per-expert correction bias added for choosing only; group-limited top-k; weights from the
         * unbiased scores (DeepSeek-V3, GLM-4.5).
         */
        SIGMOID_GROUPED,
        /**
         * Llama 4 (Llama4Router): top-k of the logits, sigmoid of the chosen ones (the others score sigmoid(−∞) = 0);
         * the score multiplies the expert's input, not its output (Llama4TextMoe.forward: routed_in * router_scores).
         */
        SIGMOID_TOPK
    }

    /** How a layer's attention gets its q, k and v. */
    public enum Attention {
        /** q/k/v projections of head_dim per head (grouped KV heads allowed). */
        MHA,
        /**
         * Multi-head latent attention (DeepSeek-V2/V3): low-rank q and kv projections with their own RMSNorms, each q/k
         * head cat(nope, rope) with one rope part of k shared by all heads, v heads of their own width
         * ({@link MlaSpec} reads the dims from the config).
         */
        MLA
    }

    /** Whether the routing weights are renormalised over the chosen k. */
    public enum Renormalize { ALWAYS, NEVER, FROM_CONFIG }

    /** Which decoder layers route through experts; the others run the dense MLP. */
    public enum SparseLayers {
        ALL,
        /** Qwen-MoE: not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0. */
        QWEN,
        /** DeepSeek / GLM: layers from first_k_dense_replace on. */
        FIRST_K_DENSE,
        /** Llama 4: the config's moe_layers, else range(interleave_moe_layer_step − 1, layers, step). */
        INTERLEAVE
    }

    /**
     * Where each expert's weights live in a checkpoint as released: {@code <block>.experts.{e}.<gate|up|down>.weight}
     * (Mixtral: block_sparse_moe, w1/w3/w2), and the router at {@code <block>.<router>.weight}. transformers v5 keeps
     * them fused in memory (experts.gate_up_proj [E, 2·ff, H], experts.down_proj [E, H, ff]) and writes the released
     * names back on save; a checkpoint saved fused is read too.
     */
    public record ExpertNames(String block, String router, String gate, String up, String down) {
    }

    /**
     * gpt-oss: experts stored fused and transposed, {@code experts.gate_up_proj} [E, H, 2·ff] with gate and up
     * interleaved (columns 2j, 2j+1), {@code experts.down_proj} [E, ff, H], each with a bias; the router has a bias.
     */
    public static final ExpertNames GPT_OSS_EXPERTS = new ExpertNames("mlp", "router", "gate_up_proj", "gate_up_proj", "down_proj");
    public static final ExpertNames MIXTRAL_EXPERTS = new ExpertNames("block_sparse_moe", "gate", "w1", "w3", "w2");
    /**
     * Llama 4: fused experts {@code feed_forward.experts.gate_up_proj} [E, H, 2·ff] (gate the first ff columns, up the
     * last: gate_up.chunk(2, dim=-1)) and {@code experts.down_proj} [E, ff, H], no biases; router feed_forward.router;
     * one shared expert feed_forward.shared_expert.{gate,up,down}_proj of width intermediate_size.
     */
    public static final ExpertNames LLAMA4_EXPERTS = new ExpertNames("feed_forward", "router", "gate_up_proj", "gate_up_proj", "down_proj");
    public static final ExpertNames QWEN_EXPERTS = new ExpertNames("mlp", "gate", "gate_proj", "up_proj", "down_proj");

    /**
     * A MoE family's description: the config keys it reads, its router, and HF's rounding choice for the routing
     * weights ({@code weightsInDtype}: Qwen3-MoE and OLMoE cast them to the activation dtype before the expert
     * product, {@code router_top_value.to(router_logits.dtype)}; Mixtral keeps them float32).
     */
    public record Moe(String numExpertsKey, String expertSizeKey, Router router, Renormalize renormalize,
                      boolean weightsInDtype, SparseLayers sparseLayers, ExpertNames names) {
    }

    public final String modelType;
    public final Layout layout;
    public final NormKind norm;
    public final NormCast normCast;
    /** Gemma 2/3: extra norms on the attention and MLP outputs before each residual add. */
    public final boolean sandwichNorms;
    /** Qwen3, Gemma 3: an RMSNorm over head_dim on q and k before RoPE. */
    public final boolean qkNorm;
    /** Over what the q/k norm is taken (HEAD unless the family says FULL). */
    public final QkNormScope qkNormScope;
    /** False for OLMo 2: no norm before attention and MLP (only the post norms of {@link #sandwichNorms}). */
    public final boolean preNorms;
    /** GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x)) when the config's use_parallel_residual is true. */
    public final boolean parallelResidualFromConfig;
    /**
     * OLMo 2 (OlmoRotaryEmbedding): cos/sin are returned in fp32 and apply_rotary_pos_emb casts q·cos + rotate_half(q)·sin
     * back to the dtype once, instead of rounding cos/sin and every product to the dtype.
     */
    public final boolean ropeInFp32;
    /** SmolLM3: per-layer no_rope_layers (1 = the layer uses RoPE), else derived from no_rope_layer_interval. */
    public final boolean noRopeLayers;
    public final Mlp mlp;
    /** Gemma: embeddings multiplied by sqrt(hidden_size), the constant rounded to the activation dtype. */
    public final boolean embedScaleSqrtHidden;
    public final boolean learnedPositions;
    public final Bias qkvBias;
    public final Bias oBias;
    public final Bias mlpBias;
    /** Config key naming the activation (first present wins). */
    public final List<String> activationKeys;
    /** Config key of the norm epsilon. */
    public final String epsKey;
    /** HF's default for each config key this family reads, used when the key is missing (and reported). */
    public final Map<String, Object> defaults;
    /** Sliding window applies on every layer when configured (Mistral, Phi-3) unless layer_types says otherwise. */
    public final SlidingRule sliding;
    /** Attention scale from query_pre_attn_scalar (Gemma 2/3) rather than head_dim. */
    public final boolean queryPreAttnScalar;
    /** Whether the family expects a BOS token first (Gemma: quality collapses without it). */
    public final boolean requiresBos;
    /**
     * GPT-2 divides scores by a sqrt(head_dim) tensor of the activation dtype; the others multiply by a Python float
     * scale. Same math, different rounding in reduced precision.
     */
    public final boolean scoreScaleByDivision;
    /** Mixture-of-experts MLP, or null for a dense MLP on every layer. */
    public final Moe moe;
    /** OLMoE: the q/k RMSNorm spans the whole projection (all heads at once), not each head. */
    /** gpt-oss: a learned per-head sink logit joins each softmax of the attention (self_attn.sinks [heads]). */
    public final boolean attentionSinks;
    /** MHA, or MLA (DeepSeek-V3): which weights make q, k and v. */
    public final Attention attention;
    /** Where the dense MLP's projections live: layers.{i}.<mlpBlock>.{gate,up,down}_proj (Llama 4: feed_forward). */
    public final String mlpBlock;
    /** Config key of the dense MLP's width (Llama 4: intermediate_size_mlp; intermediate_size is the experts'). */
    public final String mlpSizeKey;
    /**
     * Llama 4's attention (modeling_llama4.py Llama4TextAttention): RoPE as a complex product on interleaved pairs
     * (2j, 2j+1); on RoPE layers a weightless L2 norm of q and k after RoPE (use_qk_norm) and chunked attention
     * (attention_chunk_size, layer_types chunked_attention); on NoPE layers temperature tuning of q
     * (attn_temperature_tuning, floor_scale, attn_scale). The per-layer values are in {@link LayerSpec#llama4()}.
     */
    public final boolean llama4Attention;

    /** Which layers slide, when the config has no explicit layer_types. */
    public enum SlidingRule {
        NONE,
        /** Every layer, when sliding_window is set (Mistral, Phi-3). */
        ALL_IF_SET,
        /** Qwen2/3: only with use_sliding_window, and only layers >= max_window_layers. */
        QWEN,
        /** Gemma 2: even layers slide (layer i slides when (i+1) % 2 != 0). */
        ALTERNATE,
        /** Gemma 3: every sliding_window_pattern-th layer is global, the rest slide. */
        PATTERN,
        /** SmolLM3: with use_sliding_window and a sliding_window, the NoPE layers slide (configuration_smollm3.py). */
        NOPE_LAYERS
    }

    private Family(Builder b) {
        modelType = b.modelType;
        layout = b.layout;
        norm = b.norm;
        normCast = b.normCast;
        sandwichNorms = b.sandwichNorms;
        qkNorm = b.qkNorm;
        qkNormScope = b.qkNormScope;
        preNorms = b.preNorms;
        parallelResidualFromConfig = b.parallelResidual;
        noRopeLayers = b.noRopeLayers;
        ropeInFp32 = b.ropeInFp32;
        mlp = b.mlp;
        embedScaleSqrtHidden = b.embedScaleSqrtHidden;
        learnedPositions = b.learnedPositions;
        qkvBias = b.qkvBias;
        oBias = b.oBias;
        mlpBias = b.mlpBias;
        activationKeys = List.copyOf(b.activationKeys);
        epsKey = b.epsKey;
        defaults = Map.copyOf(b.defaults);
        sliding = b.sliding;
        queryPreAttnScalar = b.queryPreAttnScalar;
        requiresBos = b.requiresBos;
        scoreScaleByDivision = b.layout == Layout.GPT2;
        moe = b.moe;
        attentionSinks = b.attentionSinks;
        attention = b.attention;
        mlpBlock = b.mlpBlock;
        mlpSizeKey = b.mlpSizeKey;
        llama4Attention = b.llama4Attention;
    }

    /** Declared before the families, which use it in their static initialisers. Stands for Python's None among {@link #defaults} (immutable maps hold no nulls). */
    public static final Object NONE = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    // ---- The families. Defaults are HF transformers' configuration_*.py defaults. ----

    public static final Family LLAMA = new Builder("llama")
            .defaults("rms_norm_eps", 1e-6, "hidden_act", "silu", "rope_theta", 10000.0, "attention_bias", false,
                    "mlp_bias", false, "tie_word_embeddings", false, "max_position_embeddings", 2048,
                    "bos_token_id", 1, "eos_token_id", 2)
            .build();

    public static final Family MISTRAL = LLAMA.derive("mistral")
            .sliding(SlidingRule.ALL_IF_SET)
            .defaults("sliding_window", 4096, "max_position_embeddings", 4096 * 32)
            .build();

    public static final Family QWEN2 = LLAMA.derive("qwen2")
            .qkvBias(Bias.ALWAYS).oBias(Bias.NONE).mlpBias(Bias.NONE)
            .sliding(SlidingRule.QWEN)
            .defaults("use_sliding_window", false, "sliding_window", 4096, "max_window_layers", 28,
                    "max_position_embeddings", 32768, "bos_token_id", null, "eos_token_id", null)
            .build();

    public static final Family QWEN3 = QWEN2.derive("qwen3")
            .qkvBias(Bias.FROM_CONFIG).oBias(Bias.FROM_CONFIG).qkNorm(true)
            .defaults("head_dim", 128)
            .build();

    public static final Family GEMMA = LLAMA.derive("gemma")
            .norm(NormKind.RMS_UNIT_OFFSET).normCast(NormCast.WEIGHT_THEN_CAST)
            .embedScale(true).requiresBos(true)
            .activationKeys("hidden_activation", "hidden_act")
            .defaults("hidden_activation", "gelu_pytorch_tanh", "head_dim", 256, "tie_word_embeddings", true,
                    "max_position_embeddings", 8192, "bos_token_id", 2, "eos_token_id", 1, "pad_token_id", 0)
            .build();

    public static final Family GEMMA2 = GEMMA.derive("gemma2")
            .sandwichNorms(true).queryPreAttnScalar(true).sliding(SlidingRule.ALTERNATE)
            .activationKeys("hidden_activation")
            .defaults("query_pre_attn_scalar", 256, "sliding_window", 4096, "final_logit_softcapping", 30.0,
                    "attn_logit_softcapping", 50.0)
            .build();

    public static final Family GEMMA3_TEXT = GEMMA2.derive("gemma3_text")
            .qkNorm(true).sliding(SlidingRule.PATTERN)
            .defaults("rope_theta", 1_000_000.0, "rope_local_base_freq", 10_000.0, "sliding_window_pattern", 6,
                    "final_logit_softcapping", null, "attn_logit_softcapping", null, "max_position_embeddings", 131072)
            .build();

    public static final Family PHI3 = LLAMA.derive("phi3")
            .layout(Layout.PHI3).sliding(SlidingRule.ALL_IF_SET)
            .defaults("rms_norm_eps", 1e-5, "partial_rotary_factor", 1.0, "sliding_window", null,
                    "max_position_embeddings", 4096, "bos_token_id", 1, "eos_token_id", 32000)
            .build();

    public static final Family GPT2 = LLAMA.derive("gpt2")
            .layout(Layout.GPT2).norm(NormKind.LAYER).mlp(Mlp.PLAIN).learnedPositions(true)
            .qkvBias(Bias.ALWAYS).oBias(Bias.ALWAYS).mlpBias(Bias.ALWAYS)
            .activationKeys("activation_function").epsKey("layer_norm_epsilon")
            .defaults("activation_function", "gelu_new", "layer_norm_epsilon", 1e-5, "tie_word_embeddings", true,
                    "n_positions", 1024, "bos_token_id", 50256, "eos_token_id", 50256, "scale_attn_weights", true,
                    "scale_attn_by_inverse_layer_idx", false)
            .build();

    public static final Family NEMOTRON = LLAMA.derive("nemotron")
            .norm(NormKind.LAYER_UNIT_OFFSET).mlp(Mlp.PLAIN).epsKey("norm_eps")
            .defaults("hidden_act", "relu2", "norm_eps", 1e-5, "partial_rotary_factor", 0.5,
                    "max_position_embeddings", 4096, "bos_token_id", 2, "eos_token_id", 3)
            .build();

    /**
     * OLMo 2 (modeling_olmo2.py): no pre-norms, RMSNorm after attention and after the MLP, q/k RMSNorm over the whole
     * projection, and the norm multiplies by the weight in fp32 before casting back (weight * x̂).to(dtype).
     */
    public static final Family OLMO2 = LLAMA.derive("olmo2")
            .preNorms(false).sandwichNorms(true).qkNorm(true).qkNormScope(QkNormScope.FULL).ropeInFp32(true)
            .normCast(NormCast.WEIGHT_THEN_CAST)
            .defaults("rms_norm_eps", 1e-5, "max_position_embeddings", 2048, "bos_token_id", null,
                    "eos_token_id", 50279, "pad_token_id", 1)
            .build();

    /** SmolLM3 (modeling_smollm3.py): Llama with NoPE layers; no_rope_layers[i] == 1 means layer i USES RoPE. */
    public static final Family SMOLLM3 = LLAMA.derive("smollm3")
            .noRopeLayers(true).sliding(SlidingRule.NOPE_LAYERS)
            .defaults("use_sliding_window", false, "sliding_window", null, "no_rope_layer_interval", 4, "rope_theta", 2_000_000.0, "max_position_embeddings", 32768)
            .build();

    /**
     * GPT-NeoX / Pythia (modeling_gpt_neox.py): LayerNorm with bias, fused query_key_value [heads, 3, head_dim],
     * partial rotary (rotary_pct / partial_rotary_factor, default 0.25), plain MLP with biases, parallel residual.
     */
    public static final Family GPT_NEOX = LLAMA.derive("gpt_neox")
            .layout(Layout.NEOX).norm(NormKind.LAYER).mlp(Mlp.PLAIN).parallelResidual(true)
            .qkvBias(Bias.FROM_CONFIG).oBias(Bias.FROM_CONFIG).mlpBias(Bias.ALWAYS)
            .epsKey("layer_norm_eps")
            .defaults("hidden_act", "gelu", "layer_norm_eps", 1e-5, "partial_rotary_factor", 0.25, "attention_bias", true,
                    "use_parallel_residual", true, "max_position_embeddings", 2048, "bos_token_id", 0, "eos_token_id", 2)
            .build();

    // ---- Mixtures of experts (modeling_mixtral.py, modeling_qwen3_moe.py, modeling_olmoe.py of transformers 5.17) ----

    public static final Family MIXTRAL = MISTRAL.derive("mixtral")
            .moe(new Moe("num_local_experts", "intermediate_size", Router.SOFTMAX_TOPK, Renormalize.ALWAYS, false,
                    SparseLayers.ALL, MIXTRAL_EXPERTS))
            .defaults("num_local_experts", 8, "num_experts_per_tok", 2, "sliding_window", null, "rope_theta", 1e6,
                    "router_jitter_noise", 0.0)
            .build();

    public static final Family QWEN3_MOE = QWEN3.derive("qwen3_moe")
            .moe(new Moe("num_experts", "moe_intermediate_size", Router.SOFTMAX_TOPK, Renormalize.FROM_CONFIG, true,
                    SparseLayers.QWEN, QWEN_EXPERTS))
            .defaults("num_experts", 128, "num_experts_per_tok", 8, "moe_intermediate_size", 768, "norm_topk_prob", false,
                    "decoder_sparse_step", 1)
            .build();

    public static final Family OLMOE = LLAMA.derive("olmoe")
            .qkNorm(true).qkNormScope(QkNormScope.FULL)   // OLMoE: q/k norm over the whole projection, like OLMo 2
            .moe(new Moe("num_experts", "intermediate_size", Router.SOFTMAX_TOPK, Renormalize.FROM_CONFIG, true,
                    SparseLayers.ALL, QWEN_EXPERTS))
            .defaults("num_experts", 64, "num_experts_per_tok", 8, "norm_topk_prob", false, "rms_norm_eps", 1e-5,
                    "clip_qkv", null, "max_position_embeddings", 4096, "bos_token_id", null, "eos_token_id", 50279,
                    "pad_token_id", 1)
            .build();

    /**
     * gpt-oss (modeling_gpt_oss.py): sinks, layer_types sliding/full, RMSNorm that multiplies the weight in float32 before
     * the cast, clamped SwiGLU experts (alpha 1.702, limit 7.0: constants in HF 5.17, which does not read
     * config.swiglu_limit) with biases, top-k→softmax router with a bias, YaRN.
     */
    public static final Family GPT_OSS = LLAMA.derive("gpt_oss")
            .normCast(NormCast.WEIGHT_THEN_CAST).attentionSinks(true)
            .moe(new Moe("num_local_experts", "intermediate_size", Router.TOPK_SOFTMAX, Renormalize.NEVER, true,
                    SparseLayers.ALL, GPT_OSS_EXPERTS))
            .defaults("num_local_experts", 128, "num_experts_per_tok", 4, "sliding_window", 128, "rope_theta", 150000.0,
                    "rms_norm_eps", 1e-5, "head_dim", 64, "attention_bias", true, "max_position_embeddings", 131072,
                    "tie_word_embeddings", false)
            .build();

    /**
     * GLM-4.5 (modeling_glm4_moe.py): sigmoid router in float32 with a selection-only correction bias, group-limited
     * top-k, routed_scaling_factor, one shared expert, dense layers before first_k_dense_replace, partial rotary,
     * q/k/v biases without an o bias.
     */
    public static final Family GLM4_MOE = LLAMA.derive("glm4_moe")
            .oBias(Bias.NONE)
            .moe(new Moe("n_routed_experts", "moe_intermediate_size", Router.SIGMOID_GROUPED, Renormalize.FROM_CONFIG, false,
                    SparseLayers.FIRST_K_DENSE, QWEN_EXPERTS))
            .defaults("n_routed_experts", 128, "num_experts_per_tok", 8, "n_group", 1, "topk_group", 1,
                    "routed_scaling_factor", 1.0, "n_shared_experts", 1, "first_k_dense_replace", 1, "norm_topk_prob", true,
                    "partial_rotary_factor", 0.5, "attention_bias", false, "rms_norm_eps", 1e-5, "use_qk_norm", false,
                    "max_position_embeddings", 131072)
            .build();

    /**
     * DeepSeek-V3 (modeling_deepseek_v3.py, configuration_deepseek_v3.py of transformers 5.x): MLA attention, the GLM-4.5
     * router and experts (sigmoid, selection-only correction bias, groups, routed_scaling_factor, shared experts,
     * dense layers before first_k_dense_replace); no MLP biases; o_proj, q_a_proj and kv_a_proj_with_mqa biased by
     * attention_bias. Defaults are HF's (configuration_deepseek_v3.py).
     */
    public static final Family DEEPSEEK_V3 = LLAMA.derive("deepseek_v3")
            .attention(Attention.MLA).mlpBias(Bias.NONE)
            .moe(GLM4_MOE.moe)
            .defaults("n_routed_experts", 256, "num_experts_per_tok", 8, "n_group", 8, "topk_group", 4,
                    "routed_scaling_factor", 2.5, "n_shared_experts", 1, "first_k_dense_replace", 3, "norm_topk_prob", true,
                    "moe_intermediate_size", 2048, "kv_lora_rank", 512, "q_lora_rank", 1536, "qk_rope_head_dim", 64,
                    "v_head_dim", 128, "qk_nope_head_dim", 128, "rope_interleave", true, "rms_norm_eps", 1e-6,
                    "max_position_embeddings", 4096, "bos_token_id", 0, "eos_token_id", 1, "pad_token_id", null,
                    "attention_bias", false, "tie_word_embeddings", false)
            .build();

    /**
     * Llama 4 text (modeling_llama4.py, configuration_llama4.py Llama4TextConfig of transformers 5.x): NoPE layers
     * (no_rope_layers, 1 = the layer uses RoPE, default every 4th layer NoPE), {@link #llama4Attention}, MoE layers
     * every interleave_moe_layer_step with a top-k→sigmoid router scaling the experts' input, fused experts, a shared
     * expert, dense layers of intermediate_size_mlp. Defaults are Llama4TextConfig's.
     */
    public static final Family LLAMA4_TEXT = LLAMA.derive("llama4_text")
            .noRopeLayers(true).llama4Attention(true).mlpBlock("feed_forward").mlpSizeKey("intermediate_size_mlp")
            .moe(new Moe("num_local_experts", "intermediate_size", Router.SIGMOID_TOPK, Renormalize.NEVER, true,
                    SparseLayers.INTERLEAVE, LLAMA4_EXPERTS))
            .defaults("rms_norm_eps", 1e-5, "rope_theta", 500000.0, "head_dim", 128, "num_local_experts", 16,
                    "num_experts_per_tok", 1, "interleave_moe_layer_step", 1, "use_qk_norm", true,
                    "no_rope_layer_interval", 4, "attention_chunk_size", 8192, "attn_temperature_tuning", true,
                    "floor_scale", 8192, "attn_scale", 0.1, "intermediate_size_mlp", 16384,
                    "max_position_embeddings", 4096 * 32, "bos_token_id", 1, "eos_token_id", 2, "pad_token_id", null,
                    "tie_word_embeddings", false)
            .build();

    private static final Map<String, Family> BY_TYPE = new LinkedHashMap<>();

    static {
        for (Family f : List.of(LLAMA, MISTRAL, QWEN2, QWEN3, GEMMA, GEMMA2, GEMMA3_TEXT, PHI3, GPT2, NEMOTRON,
                OLMO2, SMOLLM3, GPT_NEOX))
            BY_TYPE.put(f.modelType, f);
        for (Family f : List.of(MIXTRAL, QWEN3_MOE, OLMOE, GPT_OSS, GLM4_MOE, DEEPSEEK_V3, LLAMA4_TEXT))
            BY_TYPE.put(f.modelType, f);
    }

    public static Family forModelType(String modelType) {
        return BY_TYPE.get(modelType);
    }

    public static String supportedTypes() {
        return String.join(", ", new TreeSet<>(BY_TYPE.keySet()));
    }

    public Builder derive(String modelType) {
        return new Builder(modelType, this);
    }

    @Override
    public String toString() {
        return modelType;
    }

    public static final class Builder {
        private final String modelType;
        private Layout layout = Layout.LLAMA;
        private NormKind norm = NormKind.RMS;
        private NormCast normCast = NormCast.CAST_THEN_WEIGHT;
        private boolean sandwichNorms, qkNorm, embedScaleSqrtHidden, learnedPositions, queryPreAttnScalar, requiresBos;
        private QkNormScope qkNormScope = QkNormScope.HEAD;
        private boolean preNorms = true, parallelResidual, noRopeLayers, ropeInFp32;
        private Mlp mlp = Mlp.GATED;
        private Bias qkvBias = Bias.FROM_CONFIG, oBias = Bias.FROM_CONFIG, mlpBias = Bias.FROM_CONFIG;
        private List<String> activationKeys = List.of("hidden_act");
        private String epsKey = "rms_norm_eps";
        private final Map<String, Object> defaults = new LinkedHashMap<>();
        private SlidingRule sliding = SlidingRule.NONE;
        private Moe moe;
        private boolean attentionSinks;
        private Attention attention = Attention.MHA;
        private String mlpBlock = "mlp", mlpSizeKey = "intermediate_size";
        private boolean llama4Attention;

        Builder(String modelType) {
            this.modelType = modelType;
        }

        Builder(String modelType, Family parent) {
            this.modelType = modelType;
            layout = parent.layout;
            norm = parent.norm;
            normCast = parent.normCast;
            sandwichNorms = parent.sandwichNorms;
            qkNorm = parent.qkNorm;
            embedScaleSqrtHidden = parent.embedScaleSqrtHidden;
            learnedPositions = parent.learnedPositions;
            queryPreAttnScalar = parent.queryPreAttnScalar;
            requiresBos = parent.requiresBos;
            qkNormScope = parent.qkNormScope;
            preNorms = parent.preNorms;
            parallelResidual = parent.parallelResidualFromConfig;
            noRopeLayers = parent.noRopeLayers;
            ropeInFp32 = parent.ropeInFp32;
            mlp = parent.mlp;
            qkvBias = parent.qkvBias;
            oBias = parent.oBias;
            mlpBias = parent.mlpBias;
            activationKeys = parent.activationKeys;
            epsKey = parent.epsKey;
            defaults.putAll(parent.defaults);
            sliding = parent.sliding;
            moe = parent.moe;
            attentionSinks = parent.attentionSinks;
            attention = parent.attention;
            mlpBlock = parent.mlpBlock;
            mlpSizeKey = parent.mlpSizeKey;
            llama4Attention = parent.llama4Attention;
        }

        Builder layout(Layout v) { layout = v; return this; }
        Builder norm(NormKind v) { norm = v; return this; }
        Builder normCast(NormCast v) { normCast = v; return this; }
        Builder sandwichNorms(boolean v) { sandwichNorms = v; return this; }
        Builder qkNorm(boolean v) { qkNorm = v; return this; }
        Builder mlp(Mlp v) { mlp = v; return this; }
        Builder embedScale(boolean v) { embedScaleSqrtHidden = v; return this; }
        Builder learnedPositions(boolean v) { learnedPositions = v; return this; }
        Builder qkvBias(Bias v) { qkvBias = v; return this; }
        Builder oBias(Bias v) { oBias = v; return this; }
        Builder mlpBias(Bias v) { mlpBias = v; return this; }
        Builder activationKeys(String... keys) { activationKeys = List.of(keys); return this; }
        Builder epsKey(String v) { epsKey = v; return this; }
        Builder sliding(SlidingRule v) { sliding = v; return this; }
        Builder queryPreAttnScalar(boolean v) { queryPreAttnScalar = v; return this; }
        Builder requiresBos(boolean v) { requiresBos = v; return this; }
        Builder qkNormScope(QkNormScope v) { qkNormScope = v; return this; }
        Builder preNorms(boolean v) { preNorms = v; return this; }
        Builder parallelResidual(boolean v) { parallelResidual = v; return this; }
        Builder noRopeLayers(boolean v) { noRopeLayers = v; return this; }
        Builder ropeInFp32(boolean v) { ropeInFp32 = v; return this; }
        Builder moe(Moe v) { moe = v; return this; }
        Builder attentionSinks(boolean v) { attentionSinks = v; return this; }
        Builder attention(Attention v) { attention = v; return this; }
        Builder mlpBlock(String v) { mlpBlock = v; return this; }
        Builder mlpSizeKey(String v) { mlpSizeKey = v; return this; }
        Builder llama4Attention(boolean v) { llama4Attention = v; return this; }

        /** Key/value pairs; a null value means "HF's default is None". Map.copyOf rejects nulls, so store a marker. */
        Builder defaults(Object... kv) {
            for (int i = 0; i < kv.length; i += 2)
                defaults.put((String) kv[i], kv[i + 1] == null ? NONE : kv[i + 1]);
            return this;
        }

        Family build() {
            return new Family(this);
        }
    }

}
