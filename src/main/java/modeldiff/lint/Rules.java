package modeldiff.lint;

import java.util.List;

/**
 * The catalog of lint rules: id, what it checks, and the public record of the real bug it is modelled on (docs/lint.md
 * has the long form). Ids are stable: scripts match on them.
 */
public final class Rules {
    private Rules() {
    }

    /** One rule of the catalog. {@code reference} is a URL (or several, space separated), or null. */
    public record Rule(String id, String checks, String reference) {
    }

    // Reading the release at all.
    public static final String CONFIG_LOAD_FAILED = "config.load_failed";
    public static final String WEIGHTS_LOAD_FAILED = "weights.load_failed";

    // config.json
    public static final String PAD_EQUALS_EOS = "config.pad_equals_eos";
    public static final String SPECIAL_TOKEN_OUT_OF_RANGE = "config.special_token_out_of_range";
    public static final String SLIDING_WINDOW = "config.sliding_window_not_power_of_two";
    public static final String SWIGLU_LIMIT = "config.swiglu_limit_ignored";
    public static final String ACTIVATION_CONFLICT = "config.activation_conflict";
    public static final String HEAD_DIM = "config.head_dim_inconsistent";
    public static final String ATTN_SCALE = "config.attn_scale_unusual";
    public static final String ROPE_SCALING = "config.rope_scaling_inconsistent";
    public static final String VOCAB_64 = "config.vocab_not_multiple_of_64";
    public static final String TIE_MISMATCH = "config.tie_mismatch";

    // weights
    public static final String UNTRAINED_ROWS = "weights.untrained_rows";
    public static final String NONFINITE = "weights.nonfinite";
    public static final String DTYPE_MISMATCH = "weights.dtype_mismatch";
    public static final String UNEXPECTED = "weights.unexpected";
    public static final String MISSING = "weights.missing";
    public static final String SHAPE_MISMATCH = "weights.shape_mismatch";
    public static final String QUANT_SCALE = "weights.quant_scale";
    public static final String REF_QUANT = "https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/mxfp4.py "
            + "https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/finegrained_fp8.py";

    // the tokens a run would use
    public static final String MISSING_BOS = "input.missing_bos";
    public static final String DOUBLE_BOS = "input.double_bos";
    public static final String UNTRAINED_TOKEN = "input.untrained_token";
    public static final String TOKEN_OUT_OF_RANGE = "input.token_out_of_range";

    // tokenizer_config.json, generation_config.json
    public static final String TOK_ADD_BOS_DISABLED = "tokenizer.add_bos_disabled";
    public static final String TOK_PAD_EQUALS_EOS = "tokenizer.pad_equals_eos";
    public static final String TOK_BOS_MISMATCH = "tokenizer.bos_mismatch";
    public static final String TOK_EOS_MISMATCH = "tokenizer.eos_mismatch";
    public static final String TOK_OUT_OF_RANGE = "tokenizer.token_out_of_range";
    public static final String GEN_EOS_MISMATCH = "generation.eos_mismatch";
    public static final String GEN_BOS_MISMATCH = "generation.bos_mismatch";
    public static final String GEN_OUT_OF_RANGE = "generation.token_out_of_range";
    public static final String TOK_LOAD_FAILED = "tokenizer.load_failed";
    // the tokenizer files themselves (tokenizer.json, tokenizer.model, the chat template)
    public static final String TOK_FAST_SLOW_MISMATCH = "tokenizer.fast_slow_mismatch";
    public static final String TOK_BOS_DOUBLED = "tokenizer.bos_doubled";
    public static final String TOK_ADDED_UNTRAINED = "tokenizer.added_token_untrained";
    public static final String TOK_PRETOKENIZER_REGEX = "tokenizer.pretokenizer_regex";
    public static final String TOK_FILES_UNREADABLE = "tokenizer.files_unreadable";
    public static final String TOK_FLAGS_IGNORED = "tokenizer.bos_eos_flags_ignored";
    public static final String REF_LLAMACPP_REGEX = "https://github.com/ggml-org/llama.cpp/issues/6914 https://github.com/ggml-org/llama.cpp/pull/6920";
    public static final String REF_MISTRAL_REGEX = "https://github.com/huggingface/transformers/pull/42299";
    public static final String GEN_LOAD_FAILED = "generation.load_failed";

    // References (all public; see docs/lint.md for what each shows).
    public static final String REF_PHI3_WINDOW = "https://github.com/vllm-project/vllm/pull/4380";
    public static final String REF_WINDOW_OFF_BY_ONE = "https://github.com/huggingface/transformers/issues/29623";
    public static final String REF_PHI3_CONFIG = "https://huggingface.co/microsoft/Phi-3-mini-4k-instruct/blob/main/config.json";
    public static final String REF_GEMMA_GELU = "https://github.com/huggingface/transformers/pull/29402";
    public static final String REF_LLAMA3_UNTRAINED = "https://github.com/unslothai/unsloth/pull/929";
    /** GptOssExperts: self.alpha = 1.702, self.limit = 7.0, whatever config.swiglu_limit says (transformers 5.17.0). */
    public static final String REF_GPT_OSS_LIMIT = "https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt_oss/modeling_gpt_oss.py";
    /** openai/gpt-oss's own implementation reads the limit from its config (ModelConfig.swiglu_limit, default 7.0). */
    public static final String REF_GPT_OSS_REF = "https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py";
    public static final String REF_YARN_FACTOR = "https://github.com/huggingface/transformers/blob/main/src/transformers/modeling_rope_utils.py";

    public static final List<Rule> ALL = List.of(
            new Rule(CONFIG_LOAD_FAILED, "config.json cannot be read as HF transformers would (the load error itself)", null),
            new Rule(WEIGHTS_LOAD_FAILED, "the safetensors files or their index cannot be read", null),
            new Rule(PAD_EQUALS_EOS, "pad_token_id is also an EOS id (masking padding masks EOS)", null),
            new Rule(SPECIAL_TOKEN_OUT_OF_RANGE, "bos/eos/pad token ids outside [0, vocab_size)", null),
            new Rule(SLIDING_WINDOW, "sliding_window not a power of two (2^k-1 is the Phi-3 2047 off-by-one pattern), or larger than max_position_embeddings",
                    REF_PHI3_WINDOW + " " + REF_WINDOW_OFF_BY_ONE + " " + REF_PHI3_CONFIG),
            new Rule(ACTIVATION_CONFLICT, "Gemma family: exact 'gelu' instead of the tanh approximation, or hidden_act and hidden_activation disagreeing", REF_GEMMA_GELU),
            new Rule(HEAD_DIM, "head_dim given and != hidden/heads where the family normally derives it; heads*head_dim != q_proj/k_proj rows", null),
            new Rule(ATTN_SCALE, "query_pre_attn_scalar is neither head_dim nor hidden/heads", null),
            new Rule(SWIGLU_LIMIT, "gpt-oss: swiglu_limit other than 7, which HF transformers ignores (its clamp is hard-coded at 7) while "
                    + "implementations that read the config use it", REF_GPT_OSS_LIMIT + " " + REF_GPT_OSS_REF),
            new Rule(ROPE_SCALING, "rope scaling block: unknown type, missing keys (llama3; original_max_position_embeddings for yarn), factor vs max_position_embeddings / original_max_position_embeddings", REF_YARN_FACTOR),
            new Rule(VOCAB_64, "vocab_size not a multiple of 64 (info)", null),
            new Rule(TIE_MISMATCH, "tied embeddings with a stored lm_head.weight that differs, or untied with no lm_head.weight", null),
            new Rule(UNTRAINED_ROWS, "embedding / lm_head rows with L2 norm 0 or < 1e-3 x the median row norm", REF_LLAMA3_UNTRAINED),
            new Rule(NONFINITE, "NaN or Inf in any tensor (streamed; --skip-nonfinite skips tensors other than embedding / lm_head)", null),
            new Rule(DTYPE_MISMATCH, "config dtype / torch_dtype vs the stored dtype; dtypes that cannot hold weights", null),
            new Rule(UNEXPECTED, "tensors the family does not read", null),
            new Rule(MISSING, "tensors the family needs that are absent", null),
            new Rule(SHAPE_MISMATCH, "tensors whose shape differs from what the config implies", null),
            new Rule(QUANT_SCALE, "a quantized weight (MXFP4 X_blocks, fp8 with block scales) whose scale tensor is missing, misnamed, "
                    + "of the wrong dtype or shape, or not declared by quantization_config; a scale tensor with no quantized weight", REF_QUANT),
            new Rule(MISSING_BOS, "the family expects BOS first (Family.requiresBos) and the tokens do not start with it", null),
            new Rule(DOUBLE_BOS, "the tokens start with BOS twice", null),
            new Rule(UNTRAINED_TOKEN, "tokens whose embedding row is untrained", REF_LLAMA3_UNTRAINED),
            new Rule(TOKEN_OUT_OF_RANGE, "token ids outside [0, vocab_size)", null),
            new Rule(TOK_ADD_BOS_DISABLED, "tokenizer_config.json sets add_bos_token false for a family that needs BOS", null),
            new Rule(TOK_PAD_EQUALS_EOS, "tokenizer_config.json pad_token is the eos_token", null),
            new Rule(TOK_BOS_MISMATCH, "tokenizer bos_token resolves to an id config.json does not name", null),
            new Rule(TOK_EOS_MISMATCH, "tokenizer eos_token resolves to an id neither config.json nor generation_config.json names", null),
            new Rule(TOK_OUT_OF_RANGE, "tokenizer added tokens with ids >= vocab_size", null),
            new Rule(GEN_EOS_MISMATCH, "generation_config.json eos_token_id disagrees with config.json", null),
            new Rule(GEN_BOS_MISMATCH, "generation_config.json bos_token_id disagrees with config.json", null),
            new Rule(GEN_OUT_OF_RANGE, "generation_config.json token ids outside [0, vocab_size)", null),
            new Rule(TOK_LOAD_FAILED, "tokenizer_config.json exists but is not a JSON object", null),
            new Rule(TOK_FAST_SLOW_MISMATCH, "tokenizer.json and tokenizer.model give different ids on the built-in corpus (special-token strings aside)", null),
            new Rule(TOK_BOS_DOUBLED, "the chat template writes bos_token and the tokenizer adds BOS too: render-then-encode gives two", null),
            new Rule(TOK_ADDED_UNTRAINED, "an added or special token's embedding row is untrained (weights.untrained_rows)", REF_LLAMA3_UNTRAINED),
            new Rule(TOK_PRETOKENIZER_REGEX, "byte-level BPE that splits with GPT-2's pattern while its vocabulary holds tokens that pattern can never produce",
                    REF_LLAMACPP_REGEX + " " + REF_MISTRAL_REGEX),
            new Rule(TOK_FILES_UNREADABLE, "tokenizer.json / tokenizer.model / the chat template cannot be loaded", null),
            new Rule(TOK_FLAGS_IGNORED, "tokenizer_config.json's add_bos_token / add_eos_token disagree with what tokenizer.json's post-processor adds (transformers 5.17 follows tokenizer.json)", null),
            new Rule(GEN_LOAD_FAILED, "generation_config.json exists but is not a JSON object", null));

    public static Rule get(String id) {
        for (Rule r : ALL) if (r.id().equals(id)) return r;
        throw new IllegalArgumentException("unknown lint rule " + id);
    }
}
