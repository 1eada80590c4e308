#!/usr/bin/env python3
"""HF transformers side of the synthetic-MoE GPU comparison (docs/benchmarks.md, docs/cuda.md "MoE"): loads a folder
written by `modeldiff synth --shape gpt-oss-20b|qwen3-30b-a3b [--layers N]` with AutoModelForCausalLM.from_pretrained
in bf16 on the GPU (eager attention: gpt-oss's sinks need it; experts_implementation eager by default, HF's
per-expert loop, the order forward/lowp and the cuda pass follow), fails if any checkpoint tensor is missing,
unexpected or mismatched (so the synth's names and shapes are checked against transformers' own loader), times the
forward without hooks on seeded random tokens, then records one forward with every probe (hf_trace.run_trace, the
fixtures' trace format) for `CudaSelfTest moebench MODEL TRACE OUT.json` to compare cuda:bf16 with.

Usage (on the GPU box):
  python3 reference-impls/hf_synth_moe.py --model DIR --tokens 256 --json OUT.json --trace OUT.safetensors
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


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
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--experts", default="eager", help="experts_implementation (eager: HF's per-expert loop; "
                                                      "'default': HF's own choice, a grouped GEMM)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--trace", help="write an all-probes bf16 trace of the same tokens here (.safetensors)")
    args = ap.parse_args()

    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.from_pretrained(args.model)
    out = {"model": args.model, "model_type": cfg.model_type, "layers": cfg.num_hidden_layers, "tokens": args.tokens,
           "experts_implementation": args.experts, "gpu": torch.cuda.get_device_name(0),
           "torch": torch.__version__}
    import transformers
    out["transformers"] = transformers.__version__
    t0 = time.time()
    extra = {} if args.experts == "default" else {"experts_implementation": args.experts}
    model, info = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map="cuda",
                                                       attn_implementation="eager", output_loading_info=True, **extra)
    model.eval()
    out["load_s"] = round(time.time() - t0, 1)
    bad = {k: sorted(v) if not isinstance(v, str) else v for k, v in info.items() if v}
    if bad:  # every tensor the synth wrote must be one transformers reads, with its shape
        print(json.dumps(bad, indent=1, default=str))
        out["loading_info"] = {k: str(v)[:500] for k, v in bad.items()}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        raise SystemExit("loading info not clean: " + ", ".join(bad))

    g = torch.Generator().manual_seed(args.seed)  # on the CPU: the same ids on any device
    ids = torch.randint(0, cfg.vocab_size, (1, args.tokens), generator=g).to("cuda")

    def bare():
        with torch.no_grad():
            return model(input_ids=ids, use_cache=False).logits

    times = timed(bare, args.reps)
    out["hf_forward_ms_best"] = round(min(times), 3)
    out["hf_forward_ms_mean"] = round(sum(times) / len(times), 3)
    out["max_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    out["token_ids_first8"] = ids[0, :8].tolist()
    if args.trace:
        import hf_trace
        t1 = time.time()
        tr = hf_trace.run_trace(args.model, "bfloat16", "cuda", ids[0].tolist(), probes="all", out=args.trace, model=model)
        out["trace_s"] = round(time.time() - t1, 1)
        out["trace_probes"] = len(tr["order"])
        out["trace_missing"] = tr["missing"]
    print(json.dumps(out, indent=1))
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
