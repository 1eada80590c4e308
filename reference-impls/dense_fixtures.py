#!/usr/bin/env python3
"""Fixtures of issue #15: dense families (OLMo 2, SmolLM3, GPT-NeoX), RoPE types (dynamic NTK, LongRoPE, YaRN in the
Qwen2.5 and DeepSeek styles), the per-layer derivation rules HF applies when layer_types is absent, and GPT-2's
attention-scale switches. Built with make_fixtures.build_fixture (same weights rule, same traces), planted traces
through hf_trace's dense plants (dense_plants.py).

Usage::

    python3 dense_fixtures.py --out /tmp/fixtures [--only olmo2,smollm3] [--existing src/test/resources/fixtures]

Writes one folder per fixture and MANIFEST-dense.json (merge it into MANIFEST.json).
"""

import argparse
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
import hf_trace  # noqa: E402

rope, COMMON = mf.rope, mf.COMMON

F64, F32, BF16 = ("hf-float64", "float64", "cpu", 0), ("hf-float32", "float32", "cpu", 0), ("hf-bfloat16", "bfloat16", "cuda", 0)
STD3 = [F64, F32, BF16]


def at(offset):
    return [("%s-off%d" % (n, offset), d, dev, offset) for n, d, dev, _ in STD3]


def no_head_dim(c):
    c = dict(c)
    c.pop("head_dim")
    return c


def cfg_olmo2():
    return "Olmo2Config", dict(COMMON, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-6, bos_token_id=1,
                               eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, hidden_act="silu",
                               **rope(10000.0))


def cfg_smollm3():
    return "SmolLM3Config", dict(COMMON, vocab_size=256, num_hidden_layers=4, rms_norm_eps=1e-6, bos_token_id=1,
                                 eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, hidden_act="silu",
                                 use_sliding_window=False, no_rope_layer_interval=4, **rope(10000.0))


def cfg_gpt_neox():
    return "GPTNeoXConfig", dict(vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=128, hidden_act="gelu", max_position_embeddings=2048,
                                 layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, tie_word_embeddings=False,
                                 use_parallel_residual=True, attention_bias=True, attention_dropout=0.0,
                                 hidden_dropout=0.0, **rope(10000.0, partial=0.25))


def cfg_llama_dynamic():
    c = dict(COMMON, max_position_embeddings=32, vocab_size=256, num_hidden_layers=2, rms_norm_eps=1e-5,
             bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, hidden_act="silu",
             **rope(10000.0, {"rope_type": "dynamic", "factor": 2.0}))
    return "LlamaConfig", c


LONGROPE = {"rope_type": "longrope", "short_factor": [1.0, 1.125, 1.375, 1.75],
            "long_factor": [1.0, 4.0, 16.0, 64.0], "original_max_position_embeddings": 16}


def cfg_phi3_longrope():
    c = no_head_dim(dict(COMMON, vocab_size=300, num_hidden_layers=2, rms_norm_eps=1e-5, bos_token_id=1,
                         eos_token_id=2, pad_token_id=3, tie_word_embeddings=False, hidden_act="silu",
                         resid_pdrop=0.0, embd_pdrop=0.0, max_position_embeddings=64,
                         original_max_position_embeddings=16, **rope(10000.0, LONGROPE, partial=0.5)))
    return "Phi3Config", c


def cfg_qwen2_yarn():
    c = no_head_dim(dict(COMMON, vocab_size=300, num_hidden_layers=2, rms_norm_eps=1e-6, bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu",
                         max_position_embeddings=64,
                         **rope(10000.0, {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})))
    return "Qwen2Config", c


def cfg_llama_yarn_ds():
    # DeepSeek-style YaRN parameters on a dense model: mscale / mscale_all_dim, no truncation, custom betas.
    y = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "mscale": 1.0,
         "mscale_all_dim": 0.5, "beta_fast": 8.0, "beta_slow": 2.0, "truncate": False}
    return "LlamaConfig", dict(COMMON, max_position_embeddings=64, vocab_size=256, num_hidden_layers=2,
                               rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                               hidden_act="silu", **rope(10000.0, y))


def cfg_qwen2_swa():
    c = no_head_dim(dict(COMMON, vocab_size=300, num_hidden_layers=3, rms_norm_eps=1e-6, bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False, use_sliding_window=True, sliding_window=4,
                         max_window_layers=1, hidden_act="silu", **rope(10000.0)))
    return "Qwen2Config", c


def cfg_gpt2_scaled():
    return "GPT2Config", dict(vocab_size=288, n_embd=64, n_head=4, n_layer=3, n_positions=64, n_inner=128,
                              activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                              layer_norm_epsilon=1e-5, bos_token_id=287, eos_token_id=287, tie_word_embeddings=True,
                              scale_attn_weights=False, scale_attn_by_inverse_layer_idx=True)


def _rewrite(model_dir, fn):
    p = os.path.join(model_dir, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    before = json.loads(json.dumps(cfg))
    fn(cfg)
    with open(p, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return {"removed": sorted(set(before) - set(cfg)), "added_or_changed": {k: v for k, v in cfg.items() if before.get(k) != v}}


def drop_layer_types(model_dir):
    return _rewrite(model_dir, lambda c: c.pop("layer_types", None))


def gemma3_v4_style(model_dir):
    def fn(c):
        c.pop("layer_types", None)
        c.pop("_sliding_window_pattern", None)
        c.pop("rope_parameters", None)
        c.update(rope_theta=1000000.0, rope_local_base_freq=10000.0, sliding_window_pattern=3,
                 rope_scaling={"rope_type": "linear", "factor": 2.0})
    return _rewrite(model_dir, fn)


F32_PLANT = lambda bugs, expected, offset=0, ref="hf-float32": (bugs, "float32", "cpu", offset, ref, expected)  # noqa: E731

DENSE = [
    dict(name="olmo2", family="olmo2", cfg=cfg_olmo2, storage="bfloat16", traces=STD3,
         special=["no pre-norms: post_attention_layernorm / post_feedforward_layernorm after each sublayer",
                  "q/k RMSNorm over the whole projection (heads*head_dim) before the head split"],
         plants=[F32_PLANT(["qk_norm.per_head"], "layers.0.q"), F32_PLANT(["norm.eps=0.001"], "layers.0.q")]),
    dict(name="smollm3", family="smollm3", cfg=cfg_smollm3, storage="bfloat16", traces=STD3,
         special=["no_rope_layers derived from no_rope_layer_interval 4: layer 3 skips RoPE (1 = use RoPE)"],
         plants=[F32_PLANT(["rope.nope_inverted"], "layers.0.q"), F32_PLANT(["rope.theta=1000"], "layers.0.q")]),
    dict(name="gpt_neox", family="gpt_neox", cfg=cfg_gpt_neox, storage="bfloat16", traces=STD3,
         special=["parallel residual x + attn(ln1 x) + mlp(ln2 x)", "fused query_key_value laid out [heads, 3, head_dim]",
                  "partial rotary 0.25 (4 of 16 dims)", "LayerNorm with bias", "exact GELU", "untied embed_out"],
         plants=[F32_PLANT(["block.sequential"], "layers.0.mlp_norm"), F32_PLANT(["rope.partial=0.5"], "layers.0.q")]),
    dict(name="llama-dynamic", family="llama", cfg=cfg_llama_dynamic, storage="bfloat16", traces=STD3, n_tokens=40,
         special=["rope_type dynamic, factor 2, max_position_embeddings 32, 40 tokens (NTK base rescaled for 40)"]),
    dict(name="phi3-longrope", family="phi3", cfg=cfg_phi3_longrope, storage="bfloat16", traces=STD3 + at(20),
         special=["longrope, original_max_position_embeddings 16, max 64: short factors for 12 tokens at offset 0, "
                  "long factors at offset 20 (positions 20..31)", "attention factor sqrt(1 + ln 4 / ln 16)"],
         plants=[F32_PLANT(["rope.longrope_factors=short"], "layers.0.q", 20, "hf-float32-off20"),
                 F32_PLANT(["rope.longrope_factors=long"], "layers.0.q")]),
    dict(name="qwen2-yarn", family="qwen2", cfg=cfg_qwen2_yarn, storage="bfloat16", traces=STD3 + at(40),
         special=["yarn factor 4, original_max_position_embeddings 16 (Qwen2.5 style)", "offset 40: beyond max 64? no: "
                  "positions 40..51, beyond the original 16"],
         plants=[F32_PLANT(["rope.scaling_ignored"], "layers.0.q")]),
    dict(name="llama-yarn-ds", family="llama", cfg=cfg_llama_yarn_ds, storage="bfloat16", traces=STD3 + at(40),
         special=["yarn with mscale 1 / mscale_all_dim 0.5, beta_fast 8, beta_slow 2, truncate false (DeepSeek style)"]),
    dict(name="gemma2-derived", family="gemma2", cfg=mf.cfg_gemma2, storage="bfloat16", traces=STD3, qk_gain=2.0,
         post_save=drop_layer_types, special=["gemma2 config with layer_types removed: HF derives alternating windows"]),
    dict(name="gemma3-v4", family="gemma3", cfg=mf.cfg_gemma3, storage="bfloat16", traces=STD3,
         post_save=gemma3_v4_style,
         special=["v4-style gemma3_text config: no layer_types, sliding_window_pattern 3, rope_local_base_freq 1e4, "
                  "rope_theta 1e6 + rope_scaling linear 2"]),
    dict(name="qwen2-swa", family="qwen2", cfg=cfg_qwen2_swa, storage="bfloat16", traces=STD3,
         post_save=drop_layer_types,
         special=["use_sliding_window true, sliding_window 4, max_window_layers 1, layer_types removed"]),
    dict(name="gpt2-scaled", family="gpt2", cfg=cfg_gpt2_scaled, storage="bfloat16", traces=STD3,
         special=["scale_attn_weights false", "scale_attn_by_inverse_layer_idx true (scores / (layer+1))"]),
]


def dynamic_evidence(root):
    """The strict-float64 trace as the earlier dumper made it (float32 default dtype), beside the fixed one."""
    fdir = os.path.join(root, "llama-dynamic")
    with open(os.path.join(fdir, "fixture.json")) as f:
        tokens = json.load(f)["tokens"]
    hf_trace.STRICT_DEFAULT_DTYPE = False
    try:
        out = os.path.join(fdir, "traces", "hf-float64-f32default.safetensors")
        info = hf_trace.run_trace(os.path.join(fdir, "model"), "float64", "cpu", tokens, 0, "all", out)
        mf.log("  dynamic evidence: wrote %s (%d probes)" % (out, len(info["order"])))
    finally:
        hf_trace.STRICT_DEFAULT_DTYPE = True
    # What the rotary module holds after a 40-token forward in each mode.
    for flag in (False, True):
        hf_trace.STRICT_DEFAULT_DTYPE = flag
        import torch
        m = hf_trace.load_model(os.path.join(fdir, "model"), "float64")
        hf_trace.rebuild_rotary_in_float64(m)
        with torch.no_grad(), hf_trace.float32_means_float64():
            ids = torch.tensor([tokens])
            m(input_ids=ids, position_ids=torch.arange(len(tokens))[None], use_cache=False)
        inv = m.model.rotary_emb.inv_freq
        mf.log("  dynamic evidence: default_f64=%s inv_freq dtype %s values %s" % (
            flag, inv.dtype, [float(x).hex() for x in inv]))
    hf_trace.STRICT_DEFAULT_DTYPE = True


def existing_plants(existing, root):
    """Planted traces on fixtures already in the repository (their clean traces are there)."""
    jobs = [("gemma3", "hf-float32", ["rope.scaling_all_layers"], "planted-rope.scaling_all_layers-float32")]
    out = []
    for fx, like, plants, name in jobs:
        try:
            meta = json.load(open(os.path.join(existing, fx, "fixture.json")))
            tdir = os.path.join(root, fx + "-extra", "traces")
            os.makedirs(tdir, exist_ok=True)
            info = hf_trace.run_trace(os.path.join(existing, fx, "model"), "float32", "cpu", meta["tokens"], 0, "all",
                                      os.path.join(tdir, name + ".safetensors"), plants)
            mf.log("  %s/%s: %d probes; %s" % (fx, name, len(info["order"]), info["plant_notes"]))
            out.append({"fixture": fx, "trace": "%s/traces/%s.safetensors" % (fx, name), "planted": plants,
                        "dtype": "float32", "device": "cpu", "position_offset": 0,
                        "clean_reference": "%s/traces/%s.safetensors" % (fx, like), "plant_notes": info["plant_notes"]})
            mf.SUMMARY.append((fx + "/" + name, "OK", ""))
        except Exception:  # noqa: BLE001
            mf.log("FAIL %s/%s:\n%s" % (fx, name, traceback.format_exc()))
            mf.SUMMARY.append((fx + "/" + name, "FAIL", traceback.format_exc().strip().splitlines()[-1]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--existing", default="", help="repository fixtures root, for plants on existing fixtures")
    a = ap.parse_args(argv)
    only = [s for s in a.only.split(",") if s]
    os.makedirs(a.out, exist_ok=True)
    manifest = {"fixtures": [], "plants": []}
    built = {}
    for fx in DENSE:
        if only and fx["name"] not in only:
            continue
        mf.N_TOKENS = fx.get("n_tokens", 12)
        try:
            mf.build_fixture(fx, a.out, built, manifest)
        except Exception:  # noqa: BLE001
            mf.log("FAIL fixture %s:\n%s" % (fx["name"], traceback.format_exc()))
            mf.SUMMARY.append((fx["name"], "FAIL", traceback.format_exc().strip().splitlines()[-1]))
    mf.N_TOKENS = 12
    if "llama-dynamic" in built:
        try:
            dynamic_evidence(a.out)
        except Exception:  # noqa: BLE001
            mf.log("FAIL dynamic evidence:\n%s" % traceback.format_exc())
    if a.existing:
        manifest["plants"].extend(existing_plants(a.existing, a.out))
    with open(os.path.join(a.out, "MANIFEST-dense.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    mf.log("\n=== SUMMARY ===")
    for what, status, detail in mf.SUMMARY:
        mf.log("%-9s %-55s %s" % (status, what, detail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
