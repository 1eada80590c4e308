#!/usr/bin/env python3
"""HF transformers side of the synthetic-MoE GPU comparison (docs/benchmarks.md, "MoE shapes: prepared, not yet run"):
loads a folder written by `modeldiff synth --shape gpt-oss-20b|qwen3-30b-a3b [--layers N]` with
AutoModelForCausalLM.from_pretrained in bf16 on the GPU, fails if any checkpoint tensor is missing, unexpected or
mismatched (so the synth's names and shapes are checked against transformers' own loader), then times the forward on
seeded random tokens with and without per-layer hooks, and writes the last token's logits (float32, .npy) next to the
timings for comparison with `modeldiff trace --impl cuda:bf16` on the same tokens.

Not yet run: written where torch is absent, only checked with py_compile.

Usage (on the GPU box):
  python3 reference-impls/hf_synth_moe.py --model DIR --tokens 512 --json OUT.json --logits OUT.npy
"""
import argparse
import json
import time

import torch


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - s) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a folder written by modeldiff synth")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default="eager", help="eager (gpt-oss's sinks need eager or a kernel that has them) | sdpa")
    ap.add_argument("--json")
    ap.add_argument("--logits", help="write the last token's logits (float32) here as .npy")
    args = ap.parse_args()

    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.from_pretrained(args.model)
    out = {"model": args.model, "model_type": cfg.model_type, "layers": cfg.num_hidden_layers, "tokens": args.tokens,
           "attn": args.attn, "gpu": torch.cuda.get_device_name(0)}
    t0 = time.time()
    model, info = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map="cuda",
                                                       attn_implementation=args.attn, output_loading_info=True)
    model.eval()
    out["load_s"] = round(time.time() - t0, 1)
    bad = {k: sorted(v) if not isinstance(v, str) else v for k, v in info.items() if v}
    if bad:  # every tensor the synth wrote must be one transformers reads, with its shape
        print(json.dumps(bad, indent=1, default=str))
        raise SystemExit("loading info not clean: " + ", ".join(bad))

    g = torch.Generator(device="cuda").manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab_size, (1, args.tokens), device="cuda", generator=g)
    captured = []
    hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(
        (o[0] if isinstance(o, tuple) else o).float().cpu())) for layer in model.model.layers]

    def fwd():
        captured.clear()
        with torch.no_grad():
            return model(ids).logits[0, -1].float().cpu()

    times = timed(fwd, 3)
    out["hf_forward_hooks_ms_best"] = round(min(times), 2)
    logits = fwd()
    for h in hooks:
        h.remove()

    def bare():
        with torch.no_grad():
            return model(ids).logits

    times = timed(bare, 5)
    out["hf_forward_nohooks_ms_best"] = round(min(times), 2)
    out["hf_forward_nohooks_ms_mean"] = round(sum(times) / len(times), 2)
    out["max_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    out["token_ids_first8"] = ids[0, :8].tolist()
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.logits:
        import numpy as np
        np.save(args.logits, logits.numpy())
        with open(args.logits + ".ids.json", "w") as f:  # the tokens, for `modeldiff trace` on the same input
            json.dump(ids[0].tolist(), f)


if __name__ == "__main__":
    main()
