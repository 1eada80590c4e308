package modeldiff.forward.lowp;

/**
 * Every place where HF transformers' eager path rounds to the activation dtype (or deliberately does not), named so
 * that docs/precision.md can list them with the HF source line each mirrors, and so fixes can switch them.
 * "R" below means: compute in fp32 (PyTorch's opmath), round once to the dtype.
 */
public enum RoundingPoint {
    /** Weights: from_pretrained(dtype=…) casts every stored parameter to the dtype. */
    WEIGHT_LOAD,
    /** Gemma: normalizer = torch.tensor(sqrt(hidden), dtype=dtype) — the constant itself is rounded. */
    EMBED_SCALE_CONSTANT,
    /** Gemma: hidden * normalizer, GPT-2: wte + wpe — R. */
    EMBED_OUTPUT,
    /** Llama RMSNorm: x̂.to(dtype) before the weight multiply; Gemma: only after (x̂·(1+w)). */
    NORM_NORMALISED,
    /** Norm output: Llama R(w · x̂), Gemma R(x̂ · (1 + w)), LayerNorm R(x̂·w + b). */
    NORM_OUTPUT,
    /** Every nn.Linear: fp32 accumulation, bias added in fp32 (cuBLASLt epilogue), one R. */
    LINEAR_OUTPUT,
    /** RoPE cos/sin computed in fp32, then .to(dtype). */
    ROPE_COS_SIN,
    /** apply_rotary_pos_emb: R(q·cos), R(rotate_half(q)·sin), R(sum). */
    ROPE_APPLY,
    /** q·kᵀ matmul R, then ·scaling R (GPT-2: / R(sqrt d)). */
    ATTN_SCORES,
    /** Gemma 2 soft-cap: R(s / cap), R(tanh), R(· cap). */
    ATTN_SOFTCAP,
    /** softmax(dtype=float32).to(dtype). */
    ATTN_PROBS,
    /** probs · V matmul R. */
    ATTN_OUTPUT,
    /** act_fn(gate) R (a fused kernel rounds once; gelu_new's Python formula rounds at each op). */
    MLP_ACT,
    /** act · up R. */
    MLP_PRODUCT,
    /** residual + x R. */
    RESIDUAL,
    /** lm_head R; final soft-cap R(l / cap), R(tanh), R(· cap). */
    LOGITS
}
