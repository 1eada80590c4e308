#!/usr/bin/env python3
"""Build the tiny-model test fixtures of modeldiff and their HF reference traces.

For every supported family this script

1. builds a tiny model with HF transformers' *own* config and model classes (so the config.json
   and the safetensors layout are exactly what a real release of that family looks like),
2. fills it with seeded, non-trivial weights (embeddings N(0,1); linear weights
   N(0, (0.64/sqrt(fan_in))^2), i.e. ~0.08 for fan-in 64, so activations stay O(1); norm weights
   1+0.1*N, or 0.1*N for "(1+w)" norms; biases 0.05*N), every value rounded to a bf16-representable
   value that is also exact in fp16 (|w| < 2^-14 flushed to 0),
3. saves it with ``save_pretrained(safe_serialization=True)`` (bf16 storage, except qwen2 in fp32
   and phi3 in fp16, to exercise the Java loader's dtype handling),
4. records HF reference traces with ``hf_trace.run_trace`` (fp64/fp32 on CPU, bf16/fp16 on CUDA),
   plus planted-bug traces whose ground truth is recorded in ``MANIFEST.json``.

Each fixture and each trace is built inside its own try/except: a failure is logged with its
traceback and the run goes on; a summary is printed at the end.

Usage::

    python3 make_fixtures.py --out /tmp/fixtures [--only llama,gemma]
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
import traceback
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_trace  # noqa: E402  (the trace code is shared with the CLI tool)

import transformers  # noqa: E402

V5 = int(transformers.__version__.split(".")[0]) >= 5
N_TOKENS = 12
OFFSET_LONG = 3000

SUMMARY = []  # (what, status, detail)


def log(*a):
    print(*a, flush=True)


def seed_of(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------------
# Configs.  Values are typed exactly (int vs float) because transformers v5 configs are strict
# dataclasses that validate field types.
# ----------------------------------------------------------------------------------------------


def rope(theta, scaling=None, partial=None):
    """RoPE kwargs in the format of the installed transformers (v5: rope_parameters)."""
    if V5:
        rp = {"rope_type": "default", "rope_theta": float(theta)}
        if scaling:
            rp.update(scaling)
        if partial is not None:
            rp["partial_rotary_factor"] = float(partial)
        out = {"rope_parameters": rp}
    else:
        out = {"rope_theta": float(theta)}
        if scaling:
            out["rope_scaling"] = dict(scaling)
    if partial is not None:
        out["partial_rotary_factor"] = float(partial)
    return out


COMMON = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=8192,
    attention_dropout=0.0,
)

LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 1024,
}


def cfg_llama():
    return "LlamaConfig", dict(COMMON, vocab_size=256, num_hidden_layers=3, rms_norm_eps=1e-5, bos_token_id=1,
                               eos_token_id=2, tie_word_embeddings=False, hidden_act="silu",
                               **rope(500000.0, LLAMA3))


def cfg_llama_linear():
    return "LlamaConfig", dict(COMMON, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1,
                               eos_token_id=2, tie_word_embeddings=False, hidden_act="silu",
                               **rope(10000.0, {"rope_type": "linear", "factor": 4.0}))


def cfg_mistral():
    return "MistralConfig", dict(COMMON, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1,
                                 eos_token_id=2, tie_word_embeddings=False, sliding_window=5, hidden_act="silu",
                                 **rope(10000.0))


def cfg_qwen2():
    c = dict(COMMON, vocab_size=300, num_hidden_layers=2, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
             tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu", **rope(1000000.0))
    c.pop("head_dim")  # qwen2 derives head_dim = hidden/heads
    return "Qwen2Config", c


def cfg_qwen3():
    return "Qwen3Config", dict(COMMON, head_dim=32, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-6,
                               bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, use_sliding_window=False,
                               hidden_act="silu", **rope(1000000.0))


def cfg_gemma():
    # hidden 96 (not 64): sqrt(96) is not bf16-representable, so the embedding normaliser's
    # rounding (and the embed.scale_fp32 plant) is actually exercised; sqrt(64)=8 is exact.
    return "GemmaConfig", dict(COMMON, hidden_size=96, head_dim=32, vocab_size=320, num_hidden_layers=2,
                               rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                               tie_word_embeddings=True, hidden_act="gelu_pytorch_tanh",
                               hidden_activation="gelu_pytorch_tanh", **rope(10000.0))


def cfg_gemma2():
    return "Gemma2Config", dict(COMMON, vocab_size=256, num_hidden_layers=4, rms_norm_eps=1e-6, bos_token_id=2,
                                eos_token_id=1, pad_token_id=0, tie_word_embeddings=True,
                                hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24,
                                attn_logit_softcapping=5.0, final_logit_softcapping=3.0, sliding_window=4,
                                **rope(10000.0))


def cfg_gemma3():
    c = dict(COMMON, vocab_size=256, num_hidden_layers=6, rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1,
             pad_token_id=0, tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh",
             query_pre_attn_scalar=16, sliding_window=4)
    if V5:
        c["rope_parameters"] = {
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        }
    else:
        c.update(rope_theta=1000000.0, rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 2.0})
    return "Gemma3TextConfig", c


def cfg_phi3():
    c = dict(COMMON, vocab_size=300, num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
             pad_token_id=3, tie_word_embeddings=False, sliding_window=6, hidden_act="silu", resid_pdrop=0.0,
             embd_pdrop=0.0, original_max_position_embeddings=8192, **rope(10000.0, partial=0.5))
    c.pop("head_dim")  # phi3 derives head_dim = hidden/heads
    return "Phi3Config", c


def cfg_gpt2():
    return "GPT2Config", dict(vocab_size=288, n_embd=64, n_head=4, n_layer=2, n_positions=64, n_inner=128,
                              activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                              layer_norm_epsilon=1e-5, bos_token_id=287, eos_token_id=287, tie_word_embeddings=True)


def cfg_nemotron():
    return "NemotronConfig", dict(COMMON, vocab_size=256, num_hidden_layers=2, norm_eps=1e-5, bos_token_id=2,
                                  eos_token_id=3, tie_word_embeddings=False, hidden_act="relu2",
                                  attention_bias=False, mlp_bias=False, **rope(10000.0, partial=0.5))


def cfg_mixtral():
    # Mixtral: every layer routes (8 experts, top 2, always renormalised); expert width 32.
    return "MixtralConfig", dict(COMMON, intermediate_size=32, vocab_size=256, num_hidden_layers=2,
                                 rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                                 hidden_act="silu", num_local_experts=8, num_experts_per_tok=2,
                                 router_jitter_noise=0.0, sliding_window=None, output_router_logits=False,
                                 **rope(1000000.0))


def cfg_qwen3_moe():
    # Qwen3-MoE: layer 1 listed in mlp_only_layers runs a dense MLP of intermediate_size; the others route.
    return "Qwen3MoeConfig", dict(COMMON, head_dim=32, intermediate_size=96, moe_intermediate_size=32,
                                  vocab_size=256, num_hidden_layers=3, rms_norm_eps=1e-6, bos_token_id=1,
                                  eos_token_id=2, tie_word_embeddings=False, use_sliding_window=False,
                                  hidden_act="silu", num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                                  decoder_sparse_step=1, mlp_only_layers=[1], output_router_logits=False,
                                  **rope(1000000.0))


def cfg_olmoe():
    # OLMoE: q/k RMSNorm over the whole projection (not per head), no top-k renormalisation.
    c = dict(COMMON, intermediate_size=32, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-5,
             bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False, hidden_act="silu",
             num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, clip_qkv=None,
             output_router_logits=False, **rope(10000.0))
    c.pop("head_dim")  # olmoe derives head_dim = hidden/heads
    return "OlmoeConfig", c


def cfg_gpt_oss():
    # gpt-oss: attention sinks, alternating sliding (window 4) / full layers, clamped SwiGLU, expert and router
    # biases, top-k->softmax router, YaRN (factor 32, truncate false) as gpt-oss-20b ships it. swiglu_limit 0.5 is
    # NOT honoured by HF 5.17 (GptOssExperts hard-codes limit 7.0): the clamp bites only in gpt_oss-clamp below.
    c = dict(COMMON, intermediate_size=32, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1,
             eos_token_id=2, pad_token_id=3, tie_word_embeddings=False, hidden_act="silu", num_local_experts=8,
             num_experts_per_tok=2, sliding_window=4, layer_types=["sliding_attention", "full_attention"],
             swiglu_limit=0.5, attention_bias=True, output_router_logits=False, router_aux_loss_coef=0.0)
    yarn = {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0, "truncate": False,
            "original_max_position_embeddings": 4096}
    c.update(rope(150000.0, yarn))
    c["max_position_embeddings"] = 131072
    return "GptOssConfig", c


def cfg_glm4_moe():
    # GLM-4.5: sigmoid router with a selection-only correction bias, 2 groups of 4 (top 1 group), routed scaling
    # 2.5, one shared expert, layer 0 dense (first_k_dense_replace 1), partial rotary 0.5, attention biases.
    return "Glm4MoeConfig", dict(COMMON, intermediate_size=96, moe_intermediate_size=32, vocab_size=256,
                                 num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                                 pad_token_id=3, tie_word_embeddings=False, hidden_act="silu", n_routed_experts=8,
                                 num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5,
                                 n_shared_experts=1, first_k_dense_replace=1, norm_topk_prob=True,
                                 attention_bias=True, use_qk_norm=False, output_router_logits=False,
                                 **rope(10000.0, partial=0.5))


def deepseek_v3_kwargs(layers):
    # No COMMON: DeepseekV3Config sets head_dim = qk_rope_head_dim itself (the width RoPE rotates).
    return dict(vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1,
                n_routed_experts=8, routed_scaling_factor=2.5, kv_lora_rank=32, qk_rope_head_dim=8, v_head_dim=16,
                qk_nope_head_dim=16, n_group=4, topk_group=2, num_experts_per_tok=2, first_k_dense_replace=1,
                norm_topk_prob=True, hidden_act="silu", rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
                pad_token_id=3, tie_word_embeddings=False, attention_bias=False, attention_dropout=0.0,
                output_router_logits=False)


def cfg_deepseek_v3():
    # DeepSeek-V3's attention at toy size: q_lora_rank 24, kv_lora_rank 32, heads of nope 16 + rope 8 (qk 24) with
    # v_head_dim 16, interleaved rope, DeepSeek's YaRN (mscale = mscale_all_dim = 1, so cos/sin keep factor 1 and the
    # softmax scale gets mscale^2 = (1 + 0.1 ln 4)^2); max_position_embeddings / original = factor, as V3 ships it.
    # MoE as V3: sigmoid router, correction bias, 4 groups of 2 (top 2 groups), routed scaling 2.5, 1 shared expert,
    # layer 0 dense.
    c = deepseek_v3_kwargs(3)
    c.update(q_lora_rank=24, rope_interleave=True, max_position_embeddings=256)
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32.0,
            "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}
    c.update(rope(10000.0, yarn))
    return "DeepseekV3Config", c


def cfg_deepseek_v3_plain():
    # The other branches of DeepseekV3Attention: q_lora_rank None (a plain q_proj, DeepSeek-V2-Lite style),
    # rope_interleave False (rotate_half on the rope part as stored), no RoPE scaling (softmax scale qk^-0.5).
    c = deepseek_v3_kwargs(2)
    c.update(q_lora_rank=None, rope_interleave=False, max_position_embeddings=4096)
    c.update(rope(10000.0))
    return "DeepseekV3Config", c


def cfg_llama4_text():
    # Llama 4 text at toy size: 4 layers, layer 3 NoPE (no_rope_layer_interval 4, HF's default: no_rope_layers
    # derived), MoE on layers 1 and 3 (interleave_moe_layer_step 2, dense layers of intermediate_size_mlp 96), 4 experts
    # top-1 with one shared expert of 32; chunks of 8 positions on the RoPE layers (32 tokens: 4 chunks); temperature
    # tuning with floor_scale 4 and attn_scale 0.5 so the factor moves at every position from 3 on (and at offset
    # 3000); q/k L2 norm; llama3 RoPE scaling (factor 8, low 1, high 4, original 16).
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 16}
    return "Llama4TextConfig", dict(COMMON, intermediate_size=32, intermediate_size_mlp=96, vocab_size=256,
                                    num_hidden_layers=4, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                                    pad_token_id=3, tie_word_embeddings=False, hidden_act="silu", num_local_experts=4,
                                    num_experts_per_tok=1, interleave_moe_layer_step=2, no_rope_layer_interval=4,
                                    attention_chunk_size=8, attn_temperature_tuning=True, floor_scale=4,
                                    attn_scale=0.5, use_qk_norm=True, output_router_logits=False,
                                    router_aux_loss_coef=0.0, max_position_embeddings=8192,
                                    **rope(500000.0, llama3))


STD_TRACES = [
    ("hf-float64", "float64", "cpu", 0),
    ("hf-float32", "float32", "cpu", 0),
    ("hf-bfloat16", "bfloat16", "cuda", 0),
    ("hf-float16", "float16", "cuda", 0),
]
OFF_TRACES = [
    ("hf-float64-off3000", "float64", "cpu", OFFSET_LONG),
    ("hf-bfloat16-off3000", "bfloat16", "cuda", OFFSET_LONG),
]

# MoE families: HF's eager expert loop for every trace (the grouped GEMM has no float64 path and rounds
# differently), plus one bf16 trace through HF's default experts implementation for comparison.
MOE_TRACES = STD_TRACES[:3] + [("grouped-bfloat16", "bfloat16", "cuda", 0, None)]

# plants: (bug ids, dtype, device, offset, clean reference trace, expected first divergent probe)
FIXTURES = [
    dict(name="llama", family="llama", cfg=cfg_llama, storage="bfloat16", traces=STD_TRACES + OFF_TRACES,
         special=["llama3 rope scaling (factor 8, low 1, high 4, original 1024): 3 high-frequency pairs "
                  "unchanged, 1 smoothed, 4 divided by 8", "untied lm_head", "GQA 4 q heads / 2 kv heads"],
         plants=[(["perturb.layer1"], "float32", "cpu", 0, "hf-float32", "layers.1.mlp_out"),
                 (["rope.bf16_angles"], "bfloat16", "cuda", OFFSET_LONG, "hf-bfloat16-off3000", "layers.0.q")]),
    dict(name="llama-linear", family="llama", cfg=cfg_llama_linear, storage="bfloat16", traces=STD_TRACES,
         v4_rewrite=True,
         special=["linear rope scaling factor 4", "config.json rewritten in transformers-v4 style "
                  "(rope_theta, rope_scaling {type: linear}, torch_dtype)"]),
    dict(name="llama-sharded", family="llama", copy_of="llama", shard=True, storage="bfloat16",
         traces=STD_TRACES[:1],
         special=["same weights as llama, saved as >=3 safetensors shards with model.safetensors.index.json"]),
    dict(name="mistral", family="mistral", cfg=cfg_mistral, storage="bfloat16", traces=STD_TRACES,
         special=["sliding_window 5 on every layer (12 tokens, so it engages)"],
         plants=[(["window=4"], "float32", "cpu", 0, "hf-float32", "layers.0.attn")]),
    dict(name="qwen2", family="qwen2", cfg=cfg_qwen2, storage="float32", traces=STD_TRACES,
         special=["q/k/v projection biases", "use_sliding_window false", "rope_theta 1e6, rms_norm_eps 1e-6",
                  "weights stored as float32 (values bf16-representable)"],
         plants=[(["rope.theta=10000", "norm.eps=1e-5"], "float32", "cpu", 0, "hf-float32", "layers.0.attn_norm")]),
    dict(name="qwen3", family="qwen3", cfg=cfg_qwen3, storage="bfloat16", traces=STD_TRACES,
         special=["per-head q/k RMSNorm", "head_dim 32 with hidden 64 (heads*head_dim=128 != hidden)"]),
    dict(name="gemma", family="gemma", cfg=cfg_gemma, storage="bfloat16", traces=STD_TRACES + OFF_TRACES,
         special=["(1+w) RMSNorm computed in fp32", "embedding scaled by sqrt(hidden) rounded to the model dtype",
                  "hidden 96 so sqrt(96) is not bf16-exact", "head_dim 32 (heads*head_dim=128 != hidden 96)",
                  "gelu_pytorch_tanh", "tied embeddings"],
         plants=[(["act.gelu_exact"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_act"),
                 (["norm.cast_before_weight"], "bfloat16", "cuda", 0, "hf-bfloat16", "layers.0.attn_norm"),
                 (["embed.scale_fp32"], "bfloat16", "cuda", 0, "hf-bfloat16", "embed")]),
    dict(name="gemma2", family="gemma2", cfg=cfg_gemma2, storage="bfloat16", traces=STD_TRACES, qk_gain=2.0,
         special=["query_pre_attn_scalar 24 != head_dim 16", "attn_logit_softcapping 5.0 and "
                  "final_logit_softcapping 3.0 (q/k weights 2x larger so the attention cap bites)",
                  "sliding_window 4, 4 layers alternating sliding/full", "pre+post attention and feed-forward norms"],
         plants=[(["attn.no_softcap"], "float32", "cpu", 0, "hf-float32", "layers.0.attn")]),
    dict(name="gemma3", family="gemma3", cfg=cfg_gemma3, storage="bfloat16", traces=STD_TRACES,
         special=["Gemma3TextConfig (model_type gemma3_text)", "6 layers: 5 sliding (window 4) + 1 full",
                  "local rope base 1e4, global base 1e6 with linear factor 2", "q/k (1+w) RMSNorm",
                  "query_pre_attn_scalar 16"]),
    dict(name="phi3", family="phi3", cfg=cfg_phi3, storage="float16", traces=STD_TRACES,
         special=["fused qkv_proj and gate_up_proj", "sliding_window 6", "partial_rotary_factor 0.5",
                  "pad_token_id 3 distinct from eos 2", "weights stored as float16"]),
    dict(name="gpt2", family="gpt2", cfg=cfg_gpt2, storage="bfloat16", traces=STD_TRACES,
         special=["learned absolute position embeddings (n_positions 64)", "LayerNorm with biases",
                  "Conv1D weights stored [in, out]", "fused c_attn", "gelu_new", "tied embeddings"]),
    dict(name="nemotron", family="nemotron", cfg=cfg_nemotron, storage="bfloat16", traces=STD_TRACES,
         special=["LayerNorm1P (weight stored as w, applied as 1+w, with bias)", "relu2 MLP without gate",
                  "partial_rotary_factor 0.5"]),
    dict(name="mixtral", family="mixtral", cfg=cfg_mixtral, storage="bfloat16", traces=MOE_TRACES, n_tokens=32,
         special=["8 experts, top-2, renormalised", "router softmax in float32", "expert width 32"],
         plants=[(["moe.renormalize=false"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_out")]),
    dict(name="qwen3_moe", family="qwen3_moe", cfg=cfg_qwen3_moe, storage="bfloat16", traces=MOE_TRACES, n_tokens=32,
         special=["8 experts, top-2, norm_topk_prob true", "layer 1 dense (mlp_only_layers [1], width 96)",
                  "per-head q/k RMSNorm", "head_dim 32"],
         plants=[(["moe.routed_scaling=2.5"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_out"),
                 (["rope.theta=10000"], "float32", "cpu", 0, "hf-float32", "layers.0.q")]),
    dict(name="olmoe", family="olmoe", cfg=cfg_olmoe, storage="bfloat16", traces=MOE_TRACES, n_tokens=32,
         special=["8 experts, top-2, norm_topk_prob false", "q/k RMSNorm across all heads"],
         plants=[(["moe.renormalize=true"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_out")]),
    dict(name="gpt_oss", family="gpt_oss", cfg=cfg_gpt_oss, storage="bfloat16", traces=MOE_TRACES, n_tokens=32,
         special=["attention sinks", "layer_types sliding (window 4) / full", "clamped SwiGLU, limit 0.5",
                  "expert, router and attention biases", "top-k->softmax router", "YaRN factor 32, truncate false"],
         plants=[(["attn.no_sinks"], "float32", "cpu", 0, "hf-float32", "layers.0.attn"),
                 (["moe.softmax_before_topk"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_out"),
                 (["rope.yarn_truncate=true"], "float32", "cpu", 0, "hf-float32", "layers.0.q")]),
    dict(name="gpt_oss-clamp", family="gpt_oss", cfg=cfg_gpt_oss, storage="bfloat16", traces=STD_TRACES[:2],
         n_tokens=32, expert_gain=5.0,
         special=["gpt_oss with gate_up_proj weights x5, so that some |gate|, |up| pass HF's hard-coded limit 7 and the "
                  "clamped SwiGLU bites (HF 5.17 ignores config.swiglu_limit)",
                  "x5, not x16: at x16 (|gate|, |up| ~ 10) the clean float32 trace was 0.1 decade beyond the float32 "
                  "floor at layers.0.mlp_out against the reference (large products, fp32 cancellation), so the clean "
                  "hunt said unexplained; the floor was not changed, the fixture's scale was"],
         plants=[(["mlp.no_clamp"], "float32", "cpu", 0, "hf-float32", "layers.0.mlp_out")]),
    dict(name="glm4_moe", family="glm4_moe", cfg=cfg_glm4_moe, storage="bfloat16", traces=STD_TRACES[:3], n_tokens=32,
         special=["sigmoid router, e_score_correction_bias N(0,0.5^2), 2 groups top 1", "routed_scaling_factor 2.5",
                  "1 shared expert", "layer 0 dense", "partial rotary 0.5", "attention biases"],
         plants=[(["moe.bias_in_weights"], "float32", "cpu", 0, "hf-float32", "layers.1.mlp_out"),
                 (["moe.routed_scaling=1"], "float32", "cpu", 0, "hf-float32", "layers.1.mlp_out")]),
    dict(name="deepseek_v3", family="deepseek_v3", cfg=cfg_deepseek_v3, storage="bfloat16", traces=MOE_TRACES,
         n_tokens=32,
         special=["MLA: q_lora_rank 24, kv_lora_rank 32, qk_nope 16 + qk_rope 8, v_head_dim 16, rope_interleave",
                  "YaRN factor 4 (original 64, max 256), mscale = mscale_all_dim = 1: softmax scale x mscale^2",
                  "sigmoid router, e_score_correction_bias N(0,0.5^2), 4 groups of 2 (top 2 groups), top-2",
                  "routed_scaling_factor 2.5", "1 shared expert", "layer 0 dense"],
         plants=[(["attn.no_yarn_mscale"], "float32", "cpu", 0, "hf-float32", "layers.0.attn"),
                 (["rope.yarn_truncate=false"], "float32", "cpu", 0, "hf-float32", "layers.0.q"),
                 (["norm.eps=1e-5"], "float32", "cpu", 0, "hf-float32", "layers.0.attn_norm"),
                 (["moe.bias_in_weights"], "float32", "cpu", 0, "hf-float32", "layers.1.mlp_out"),
                 (["moe.routed_scaling=1"], "float32", "cpu", 0, "hf-float32", "layers.1.mlp_out")]),
    dict(name="deepseek_v3-plain", family="deepseek_v3", cfg=cfg_deepseek_v3_plain, storage="bfloat16",
         traces=STD_TRACES[:3], n_tokens=32,
         special=["MLA with q_lora_rank null (q_proj)", "rope_interleave false", "no RoPE scaling",
                  "MoE as deepseek_v3, layer 0 dense"],
         plants=[(["rope.theta=500000"], "float32", "cpu", 0, "hf-float32", "layers.0.q")]),
    dict(name="llama4_text", family="llama4_text", cfg=cfg_llama4_text, storage="bfloat16",
         traces=STD_TRACES[:3] + [OFF_TRACES[0]], n_tokens=32,
         special=["Llama4TextConfig (Llama4ForCausalLM)", "4 layers: layer 3 NoPE (derived from no_rope_layer_interval 4)",
                  "MoE on layers 1, 3 (interleave_moe_layer_step 2): 4 fused experts [E, H, 2ff], top-1 sigmoid router "
                  "scaling the expert input, 1 shared expert; dense layers of intermediate_size_mlp 96",
                  "attention_chunk_size 8 on the RoPE layers (32 tokens)", "attn_temperature_tuning, floor_scale 4, "
                  "attn_scale 0.5 (layer 3)", "weightless q/k L2 norm after RoPE (RoPE layers)",
                  "complex (interleaved-pair) RoPE with llama3 scaling", "traces at offset 3000 get cache_position and "
                  "masks built from the absolute positions (hf_trace)"],
         plants=[(["attn.no_chunking"], "float32", "cpu", 0, "hf-float32", "layers.0.attn"),
                 (["attn.no_temperature_tuning"], "float32", "cpu", 0, "hf-float32", "layers.3.q"),
                 (["qk_norm.off"], "float32", "cpu", 0, "hf-float32", "layers.0.q")]),
]

PLANT_DESCRIPTIONS = {
    "perturb.layer1": "layers[1].mlp.down_proj.weight multiplied by 1.02",
    "act.gelu_exact": hf_trace.PLANTS["act.gelu_exact"],
    "norm.cast_before_weight": hf_trace.PLANTS["norm.cast_before_weight"],
    "embed.scale_fp32": hf_trace.PLANTS["embed.scale_fp32"],
    "rope.bf16_angles": hf_trace.PLANTS["rope.bf16_angles"],
    "attn.no_softcap": hf_trace.PLANTS["attn.no_softcap"],
    "window=4": "sliding window 4 instead of the config's 5 (config override at load)",
    "rope.theta=10000": "RoPE base 10000 instead of the config's 1e6",
    "norm.eps=1e-5": "RMSNorm epsilon 1e-5 instead of the config's 1e-6",
    "moe.renormalize=false": hf_trace.PLANTS["moe.renormalize=false"],
    "moe.renormalize=true": hf_trace.PLANTS["moe.renormalize=true"],
    "moe.routed_scaling=2.5": "MoE routing weights multiplied by 2.5",
    "attn.no_sinks": hf_trace.PLANTS["attn.no_sinks"],
    "mlp.no_clamp": hf_trace.PLANTS["mlp.no_clamp"],
    "moe.softmax_before_topk": hf_trace.PLANTS["moe.softmax_before_topk"],
    "moe.bias_in_weights": "expert weights from the bias-corrected selection scores",
    "moe.routed_scaling=1": "routing weights scaled by 1 instead of the config's 2.5 (hook: weights x 1/2.5)",
    "rope.yarn_truncate=true": "YaRN correction range truncated to integers although the config says truncate false",
    "rope.yarn_truncate=false": "YaRN correction range left fractional although the config truncates it",
    "attn.no_yarn_mscale": hf_trace.PLANTS["attn.no_yarn_mscale"],
    "rope.theta=500000": "RoPE base 500000 instead of the config's 10000",
    "attn.no_chunking": hf_trace.PLANTS["attn.no_chunking"],
    "attn.no_temperature_tuning": hf_trace.PLANTS["attn.no_temperature_tuning"],
    "qk_norm.off": hf_trace.PLANTS["qk_norm.off"],
}


def build_config(cls_name, kwargs):
    """Instantiate a config; if a key is rejected (typed/strict configs), drop it and say so."""
    cls = getattr(transformers, cls_name)
    kwargs = dict(kwargs)
    dropped = []
    for _ in range(6):
        try:
            return cls(**kwargs), dropped
        except Exception as e:  # noqa: BLE001
            msg = str(e)
            bad = [k for k in kwargs if k in msg]
            if not bad:
                raise
            k = max(bad, key=len)
            log("  config %s rejected %r (%s): dropping it" % (cls_name, k, msg.splitlines()[0][:200]))
            dropped.append(k)
            kwargs.pop(k)
    raise RuntimeError("could not build %s" % cls_name)


# ----------------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------------


def round_bf16_fp16(t):
    """Round to bf16 and flush |x| < 2^-14 to zero, so each value is exact in bf16 AND fp16."""
    t = t.to(torch.bfloat16).to(torch.float32)
    return torch.where(t.abs() < 2.0 ** -14, torch.zeros_like(t), t)


def norm_is_offset(mod):
    """True for norms that multiply by (1 + w) (Gemma RMSNorm, Nemotron LayerNorm1P): found by
    running the module with w = 0, so no family list has to be kept in sync."""
    with torch.no_grad():
        w0 = mod.weight.detach().clone()
        b = getattr(mod, "bias", None)
        b0 = b.detach().clone() if isinstance(b, torch.nn.Parameter) else None
        mod.weight.zero_()
        if b0 is not None:
            b.zero_()
        try:
            y = mod(torch.randn(3, w0.shape[0], generator=torch.Generator().manual_seed(0)))
            off = bool(y.abs().max() > 1e-3)
        except Exception as e:  # noqa: BLE001
            name = type(mod).__name__
            off = "Gemma" in name or "1P" in name
            log("  norm probe of %s failed (%s); guessing offset=%s from its name" % (name, e, off))
        mod.weight.copy_(w0)
        if b0 is not None:
            b.copy_(b0)
    return off


def init_weights(model, seed, qk_gain=1.0, expert_gain=1.0):
    g = torch.Generator().manual_seed(seed)
    owner = {}
    for mname, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            # first owner wins: a tied lm_head must not turn the embedding into a "linear" weight
            owner.setdefault(id(p), (mname, mod))
    kinds = {}
    for name, p in sorted(model.named_parameters()):
        mname, mod = owner[id(p)]
        cls = type(mod).__name__
        leaf = name.rsplit(".", 1)[-1]
        with torch.no_grad():
            if ("norm" in cls.lower() or isinstance(mod, torch.nn.LayerNorm)) and leaf == "weight":
                off = norm_is_offset(mod)
                v = 0.1 * torch.randn(p.shape, generator=g)
                if not off:
                    v = v + 1.0
                kinds[cls] = "(1+w) norm: w=0.1N" if off else "norm: w=1+0.1N"
            elif leaf == "bias" or leaf.endswith("_bias"):
                v = 0.05 * torch.randn(p.shape, generator=g)
            elif leaf == "sinks":
                v = torch.randn(p.shape, generator=g)  # attention-sink logits, as large as the scores they join
                kinds["sinks"] = "N(0,1)"
            elif isinstance(mod, torch.nn.Embedding):
                std = 0.5 if name.endswith("wpe.weight") else 1.0  # gpt2 position table a bit smaller
                v = std * torch.randn(p.shape, generator=g)
            elif p.dim() == 2:
                fan_in = p.shape[0] if cls == "Conv1D" else p.shape[1]  # gpt2 Conv1D is [in, out]
                std = 0.64 / math.sqrt(fan_in)
                if qk_gain != 1.0 and any(s in mname for s in ("q_proj", "k_proj")):
                    std *= qk_gain
                v = std * torch.randn(p.shape, generator=g)
            elif p.dim() == 3 and cls == "Llama4TextExperts":
                # Llama 4 stores its experts [experts, in, out] (gate_up_proj [E, H, 2ff], down_proj [E, ff, H])
                v = (0.64 / math.sqrt(p.shape[1])) * torch.randn(p.shape, generator=g)
                kinds["experts"] = "Llama 4 [E, in, out]: N(0,(0.64/sqrt(in))^2)"
            elif p.dim() == 3:
                # stacked experts [experts, out, in] (transformers v5 keeps them fused in memory)
                v = (0.64 / math.sqrt(p.shape[2])) * torch.randn(p.shape, generator=g)
                kinds["experts"] = "[E, out, in]: N(0,(0.64/sqrt(in))^2)"
                if expert_gain != 1.0 and "gate_up" in leaf:
                    v = v * expert_gain
                    kinds["experts"] += "; gate_up x%g" % expert_gain
            else:
                v = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(round_bf16_fp16(v).to(p.dtype))
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):  # a persistent buffer: zero would make it invisible
            with torch.no_grad():
                b.copy_(round_bf16_fp16(0.5 * torch.randn(b.shape, generator=g)).to(b.dtype))
            kinds["e_score_correction_bias"] = "N(0, 0.5^2)"
    return kinds


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def save_model(model, path, **kw):
    try:
        model.save_pretrained(path, safe_serialization=True, **kw)
    except TypeError as e:
        # transformers versions that always write safetensors may drop the argument.
        log("  save_pretrained(safe_serialization=...) rejected (%s); saving without it" % e)
        model.save_pretrained(path, **kw)


def make_tokens(name, vocab, bos, specials, n=N_TOKENS):
    rng = np.random.default_rng(seed_of("tokens/" + name))
    pool = [t for t in range(vocab) if t not in specials]
    return [int(bos)] + [int(pool[i]) for i in rng.integers(0, len(pool), n - 1)]


def rope_buffers(model):
    out = {}
    for n, b in model.named_buffers():
        if "inv_freq" in n:
            out[n] = [float(x) for x in b.detach().double().cpu().flatten()]
    for n, m in model.named_modules():
        for a in dir(m):
            if a.endswith("attention_scaling") and not a.startswith("_"):
                try:
                    v = getattr(m, a)
                except Exception:  # noqa: BLE001
                    continue
                if isinstance(v, (int, float)):
                    out["%s.%s" % (n, a)] = float(v)
    return out


def first_divergence(clean, planted):
    """First probe (in trace order) whose values differ, and the logits difference."""
    first = None
    for n in clean["order"]:
        if n not in planted["tensors"]:
            continue
        d = float((clean["tensors"][n].double() - planted["tensors"][n].double()).abs().max())
        if d > 0 and first is None:
            first = (n, d)
    dl = float((clean["tensors"]["logits"].double() - planted["tensors"]["logits"].double()).abs().max())
    return first, dl


def trace_record(fname, info, dtype, device, offset):
    return {
        "file": "traces/%s.safetensors" % fname,
        "dtype": dtype,
        "device": info["meta"]["device"],
        "position_offset": offset,
        "probes": len(info["order"]),
        "planted": json.loads(info["meta"].get("planted", "[]")),
    }


def do_trace(fx, fname, model_dir, trace_dir, dtype, device, tokens, offset, plants=(), experts="eager"):
    what = "%s/%s" % (fx["name"], fname)
    if device.startswith("cuda") and not torch.cuda.is_available():
        log("  SKIP %s: no CUDA device" % what)
        SUMMARY.append((what, "SKIP", "no CUDA"))
        return None
    try:
        t0 = time.time()
        info = hf_trace.run_trace(model_dir, dtype, device, tokens, offset, "all",
                                  os.path.join(trace_dir, fname + ".safetensors"), plants, check_hooks=True,
                                  experts=experts)
        log("  %s: %d probes, %.1fs, params %s, hooks bitwise-equal=%s (max %g)%s" % (
            what, len(info["order"]), time.time() - t0, info["param_dtypes"], info["hooks_bitwise_equal"],
            info["hooks_max_abs_diff"], (" plants: " + "; ".join(info["plant_notes"])) if plants else ""))
        for k, v in info["missing"].items():
            log("    left out %s: %s" % (k, v))
        for n in info["recorder_notes"]:
            log("    note: %s" % n)
        SUMMARY.append((what, "OK", "%d probes, hooks equal=%s" % (len(info["order"]), info["hooks_bitwise_equal"])))
        return info
    except Exception:  # noqa: BLE001
        log("  FAIL %s:\n%s" % (what, traceback.format_exc()))
        SUMMARY.append((what, "FAIL", traceback.format_exc().strip().splitlines()[-1]))
        return None


def rewrite_v4_style(model_dir, theta, factor):
    """Rewrite config.json the way transformers v4 wrote it (rope_theta + rope_scaling{type},
    torch_dtype) to check that the current transformers still loads such configs."""
    p = os.path.join(model_dir, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    original = json.loads(json.dumps(cfg))
    cfg.pop("rope_parameters", None)
    cfg["rope_theta"] = float(theta)
    cfg["rope_scaling"] = {"type": "linear", "factor": float(factor)}
    dt = cfg.pop("dtype", None) or cfg.get("torch_dtype") or "bfloat16"
    cfg["torch_dtype"] = dt
    with open(p, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return original, cfg


# ----------------------------------------------------------------------------------------------
# One fixture
# ----------------------------------------------------------------------------------------------


def build_fixture(fx, root, built, manifest):
    name = fx["name"]
    fdir = os.path.join(root, name)
    model_dir = os.path.join(fdir, "model")
    trace_dir = os.path.join(fdir, "traces")
    if os.path.exists(fdir):
        shutil.rmtree(fdir)
    os.makedirs(trace_dir)
    desc = {"name": name, "family": fx["family"], "special": fx["special"], "storage_dtype": fx["storage"]}
    log("\n=== %s ===" % name)

    if fx.get("copy_of"):
        src = built[fx["copy_of"]]
        model, config, tokens = src["model"], src["config"], src["tokens"]
        desc["weights"] = "identical to fixture %s" % fx["copy_of"]
    else:
        cls_name, kwargs = fx["cfg"]()
        config, dropped = build_config(cls_name, kwargs)
        if dropped:
            desc["config_kwargs_rejected_by_hf"] = dropped
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        model = model.to(torch.float32).eval()
        kinds = init_weights(model, seed_of("weights/" + name), fx.get("qk_gain", 1.0), fx.get("expert_gain", 1.0))
        desc["weights"] = {"seed": seed_of("weights/" + name), "norm_kinds": kinds,
                           "rule": "embeddings N(0,1); linear N(0,(0.64/sqrt(fan_in))^2)"
                                   + (" (q/k x%g)" % fx["qk_gain"] if fx.get("qk_gain") else "")
                                   + "; norms 1+0.1N or (1+w)-style 0.1N; biases 0.05N; rounded to bf16 with "
                                     "|w|<2^-14 -> 0 (exact in bf16 and fp16)"}
        specials = {config.bos_token_id, config.eos_token_id, getattr(config, "pad_token_id", None)}
        tokens = make_tokens(name, config.vocab_size, config.bos_token_id, specials, fx.get("n_tokens", N_TOKENS))
        model = model.to(hf_trace.DTYPES[fx["storage"]])
    if fx["family"] in ("mixtral", "qwen3_moe", "olmoe", "gpt_oss", "glm4_moe", "deepseek_v3", "llama4_text"):
        desc["state_dict_in_memory"] = {k: list(v.shape) for k, v in model.state_dict().items() if ".0." in k or ".1." in k}
    desc["model_class"] = type(model).__name__
    desc["model_type"] = config.model_type
    desc["tokens"] = tokens
    desc["bos_token_id"] = config.bos_token_id

    if fx.get("shard"):
        shard = 80 * 1024
        for _ in range(4):
            if os.path.exists(model_dir):
                shutil.rmtree(model_dir)
            save_model(model, model_dir, max_shard_size=shard)
            n = len([f for f in os.listdir(model_dir) if f.endswith(".safetensors")])
            if n >= 3:
                break
            shard //= 2
        desc["shards"] = n
        log("  saved %d shards (max_shard_size %d bytes)" % (n, shard))
    else:
        save_model(model, model_dir)
    built[name] = {"model": model, "config": config, "tokens": tokens}
    with open(os.path.join(model_dir, "config.json")) as f:
        saved_cfg = json.load(f)
    log("  files: %s" % sorted(os.listdir(model_dir)))
    try:
        from safetensors import safe_open
        names = {}
        for fn in sorted(os.listdir(model_dir)):
            if fn.endswith(".safetensors"):
                with safe_open(os.path.join(model_dir, fn), "pt") as f:
                    names.update({k: list(f.get_slice(k).get_shape()) for k in f.keys()})
        desc["saved_tensors"] = names
        log("  saved tensors (layer 0): %s" % {k: v for k, v in names.items() if "layers.0." in k})
    except Exception:  # noqa: BLE001
        log("  could not list saved tensors:\n%s" % traceback.format_exc())
    log("  config.json: %s" % json.dumps(saved_cfg, sort_keys=True))

    if fx.get("v4_rewrite"):
        try:
            ref = hf_trace.run_trace(model_dir, "float64", "cpu", tokens, 0, "layers")
            original, v4 = rewrite_v4_style(model_dir, 10000.0, 4.0)
            again = hf_trace.run_trace(model_dir, "float64", "cpu", tokens, 0, "layers")
            d = float((ref["tensors"]["logits"] - again["tensors"]["logits"]).abs().max())
            cfg2 = transformers.AutoConfig.from_pretrained(model_dir)
            rp = getattr(cfg2, "rope_parameters", None) or getattr(cfg2, "rope_scaling", None)
            log("  v4-style config loads: rope -> %s; logits max|diff| vs v5-style config = %g" % (rp, d))
            desc["v4_style_config"] = {"config_as_saved_by_hf": original, "loaded_rope": rp,
                                       "logits_max_abs_diff_vs_original": d}
            SUMMARY.append(("%s/v4-config" % name, "OK" if d == 0 else "DIFF", "max|diff| %g, rope %s" % (d, rp)))
        except Exception:  # noqa: BLE001
            log("  FAIL v4 rewrite:\n%s" % traceback.format_exc())
            SUMMARY.append(("%s/v4-config" % name, "FAIL", traceback.format_exc().strip().splitlines()[-1]))

    if fx.get("post_save"):
        desc["config_rewrite"] = fx["post_save"](model_dir)  # e.g. layer_types dropped so HF derives them

    # What HF made of the config: rope tables, activation, attention windows.
    try:
        m32 = hf_trace.load_model(model_dir, "float32")
        desc["hf_observed"] = {
            "rope": rope_buffers(m32),
            "layer_types": getattr(m32.config, "layer_types", None),
            "rope_parameters": getattr(m32.config, "rope_parameters", None),
            "sliding_window": getattr(m32.config, "sliding_window", None),
        }
        parts = hf_trace.find_parts(m32)
        mlp = parts["per_layer"][0]["mlp"]
        for a in ("act_fn", "act", "activation_fn"):
            if hasattr(mlp, a):
                desc["hf_observed"]["mlp_activation"] = type(getattr(mlp, a)).__name__
        log("  hf rope buffers: %s" % json.dumps(desc["hf_observed"]["rope"]))
        log("  hf layer_types=%s sliding_window=%s activation=%s" % (
            desc["hf_observed"]["layer_types"], desc["hf_observed"]["sliding_window"],
            desc["hf_observed"].get("mlp_activation")))
        del m32
    except Exception:  # noqa: BLE001
        log("  FAIL inspecting HF model:\n%s" % traceback.format_exc())

    traces = []
    clean = {}
    for fname, dtype, device, offset, *experts in fx["traces"]:
        info = do_trace(fx, fname, model_dir, trace_dir, dtype, device, tokens, offset,
                        experts=experts[0] if experts else "eager")
        if info is None:
            continue
        clean[fname] = info
        traces.append(trace_record(fname, info, dtype, device, offset))
        if fname == "hf-float32":
            desc.setdefault("hf_observed", {})["attention_masks"] = {str(k): v for k, v in info["masks"].items()}
            desc["hf_observed"]["qkv_capture"] = info["capture_methods"]
            desc["probes"] = info["order"]
            desc["probes_left_out"] = info["missing"]
            log("  masks: %s" % info["masks"])
            log("  q/k/v captured via: %s" % info["capture_methods"])

    # Diagnostic: how HF rounds the embedding normaliser (gemma family, bf16).
    if fx["family"].startswith("gemma") and "hf-bfloat16" in clean:
        try:
            emb = model.get_input_embeddings().weight.detach().to(torch.bfloat16).cpu()
            raw = emb[torch.tensor(tokens)]
            h = config.hidden_size
            got = clean["hf-bfloat16"]["tensors"]["embed"]
            rounded = (raw * torch.tensor(math.sqrt(h), dtype=torch.bfloat16)).float()
            fp32 = (raw.float() * math.sqrt(h)).to(torch.bfloat16).float()
            desc.setdefault("hf_observed", {})["bf16_embed_scale"] = {
                "equals_raw_times_bf16(sqrt(h))": bool(torch.equal(got, rounded)),
                "equals_bf16(raw*fp32 sqrt(h))": bool(torch.equal(got, fp32)),
                "bf16(sqrt(h))": float(torch.tensor(math.sqrt(h), dtype=torch.bfloat16)),
            }
            log("  bf16 embed scale: %s" % desc["hf_observed"]["bf16_embed_scale"])
        except Exception:  # noqa: BLE001
            log("  embed-scale diagnostic failed:\n%s" % traceback.format_exc())

    plants_out = []
    for bugs, dtype, device, offset, ref_name, expected in fx.get("plants", []):
        what = "+".join(b.replace("=", "") for b in bugs)
        fname = "planted-%s-%s" % (what, dtype)
        info = do_trace(fx, fname, model_dir, trace_dir, dtype, device, tokens, offset, bugs)
        if info is None:
            continue
        traces.append(trace_record(fname, info, dtype, device, offset))
        rec = {
            "fixture": name,
            "trace": "%s/traces/%s.safetensors" % (name, fname),
            "planted": bugs,
            "descriptions": {b: PLANT_DESCRIPTIONS.get(b, "") for b in bugs},
            "dtype": dtype,
            "device": info["meta"]["device"],
            "position_offset": offset,
            "clean_reference": "%s/traces/%s.safetensors" % (name, ref_name),
            "expected_first_divergence": expected,
            "plant_notes": info["plant_notes"],
        }
        if ref_name in clean:
            first, dl = first_divergence(clean[ref_name], info)
            rec["observed_first_divergence"] = first[0] if first else None
            rec["observed_first_divergence_max_abs"] = first[1] if first else 0.0
            rec["observed_logits_max_abs_diff"] = dl
            ok = first is not None and first[0] == expected
            log("  plant %s: first divergence %s (expected %s), logits max|diff| %g -> %s" % (
                bugs, first, expected, dl, "OK" if ok else "MISMATCH"))
            SUMMARY.append(("%s/%s ground truth" % (name, fname), "OK" if ok else "MISMATCH",
                            "first %s expected %s" % (first, expected)))
        plants_out.append(rec)

    desc["traces"] = traces
    desc["position_offsets"] = sorted({t["position_offset"] for t in traces})
    desc["producer"] = hf_trace.producer_string()
    with open(os.path.join(fdir, "fixture.json"), "w") as f:
        json.dump(desc, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    manifest["fixtures"].append({
        "name": name,
        "family": fx["family"],
        "model_type": config.model_type,
        "dir": name,
        "model_files": sorted(os.listdir(model_dir)),
        "storage_dtype": fx["storage"],
        "tokens": tokens,
        "traces": traces,
    })
    manifest["plants"].extend(plants_out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="fixtures root (one folder per fixture is (re)created)")
    ap.add_argument("--only", default="", help="comma-separated fixture names (default: all)")
    a = ap.parse_args(argv)
    only = [s for s in a.only.split(",") if s]
    os.makedirs(a.out, exist_ok=True)
    log("transformers %s, torch %s, cuda %s" % (
        transformers.__version__, torch.__version__,
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"))
    if torch.cuda.is_available():
        log("cuda matmul: allow_tf32=%s bf16_reduced_precision_reduction=%s fp16_reduced_precision_reduction=%s" % (
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction))
    manifest = {
        "format": "modeldiff-fixtures/1",
        "trace_format": hf_trace.FORMAT,
        "producer": hf_trace.producer_string(),
        "generated_by": "reference-impls/make_fixtures.py (traces by reference-impls/hf_trace.py)",
        "fixtures": [],
        "plants": [],
    }
    built = {}
    for fx in FIXTURES:
        if only and fx["name"] not in only:
            continue
        if fx.get("copy_of") and fx["copy_of"] not in built:
            log("SKIP %s: needs %s built in the same run" % (fx["name"], fx["copy_of"]))
            SUMMARY.append((fx["name"], "SKIP", "needs " + fx["copy_of"]))
            continue
        try:
            build_fixture(fx, a.out, built, manifest)
        except Exception:  # noqa: BLE001
            log("FAIL fixture %s:\n%s" % (fx["name"], traceback.format_exc()))
            SUMMARY.append((fx["name"], "FAIL", traceback.format_exc().strip().splitlines()[-1]))
    mpath = os.path.join(a.out, "MANIFEST.json")
    if only and os.path.exists(mpath):
        # Partial rebuild: keep the other fixtures' entries from the previous manifest.
        with open(mpath) as f:
            old = json.load(f)
        names = {x["name"] for x in manifest["fixtures"]}
        manifest["fixtures"] = [x for x in old.get("fixtures", []) if x["name"] not in names] + manifest["fixtures"]
        manifest["plants"] = [x for x in old.get("plants", []) if x["fixture"] not in names] + manifest["plants"]
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, default=str)
        f.write("\n")

    total = 0
    for dp, _, fs in os.walk(a.out):
        total += sum(os.path.getsize(os.path.join(dp, x)) for x in fs)
    log("\n=== SUMMARY (%d items, fixtures total %.2f MB) ===" % (len(SUMMARY), total / 1e6))
    for what, status, detail in SUMMARY:
        log("%-6s %-55s %s" % (status, what, detail))
    bad = [s for s in SUMMARY if s[1] in ("FAIL", "MISMATCH")]
    log("failures/mismatches: %d" % len(bad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
