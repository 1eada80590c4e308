#!/usr/bin/env python3
"""HF transformers side of `bench gpu` (docs/benchmarks.md, section GPU): the same forward as modeldiff's cuda:bf16
bench — a llama3-8b-shaped LlamaForCausalLM with seeded random bf16 weights made on the GPU, 2048 tokens, every
decoder layer's output copied to the host by forward hooks, and the forward alone (no hooks, logits left on the GPU) —
plus torch.matmul bf16 at 4096^3 and at the forward's GEMM shapes (fp32 with --fp32). --dtypes bf16,fp16 repeats
the matmuls and the forward in fp16 (keys torch_matmul_fp16_*, hf_fp16_*); the bf16 keys keep their names.
`modeldiff bench gpu` runs this script in the same call and merges its JSON with its own.

Usage (on the GPU box): python3 reference-impls/hf_bench.py --tokens 2048 --json OUT.json [--dtypes bf16,fp16]
"""
import argparse
import json
import time

import torch

from cuda_timing import time_cuda

LLAMA3_8B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                 intermediate_size=14336, vocab_size=128256, hidden_act="silu", rms_norm_eps=1e-5,
                 rope_theta=500000.0, max_position_embeddings=131072,
                 rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192},
                 tie_word_embeddings=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--json")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--dtypes", default="bf16")
    args = ap.parse_args()
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for d in dtypes:
        if d not in ("bf16", "fp16"):
            ap.error("--dtypes takes bf16 and/or fp16, got " + d)
    tdt = {"bf16": torch.bfloat16, "fp16": torch.float16}
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers
    out["transformers"] = transformers.__version__
    n = 4096
    for dt, name, reps in ((torch.bfloat16, "bf16", 20),) + (((torch.float32, "fp32", 5),) if args.fp32 else ()):
        torch.backends.cuda.matmul.allow_tf32 = False
        a = torch.randn(n, n, device="cuda", dtype=dt)
        w = torch.randn(n, n, device="cuda", dtype=dt)
        ms = time_cuda(lambda: torch.matmul(a, w.t()), reps)
        out[f"torch_matmul_{name}_4096_ms"] = round(ms, 4)
        out[f"torch_matmul_{name}_4096_tflops"] = round(2 * n ** 3 / (ms * 1e-3) / 1e12, 2)
        print(name, out[f"torch_matmul_{name}_4096_tflops"], "TFLOP/s", flush=True)
        del a, w
    T = args.tokens
    # the same shapes as modeldiff's bench (CudaSelfTest.gemmShapes): 4096^3, q/o, k/v, gate/up, down, LM head
    for d in dtypes:
        for M, N, K in ((4096, 4096, 4096), (T, 4096, 4096), (T, 1024, 4096), (T, 14336, 4096), (T, 4096, 14336), (T, 128256, 4096)):
            a = torch.randn(M, K, device="cuda", dtype=tdt[d])
            w = torch.randn(N, K, device="cuda", dtype=tdt[d])
            ms = time_cuda(lambda: torch.matmul(a, w.t()), 20)
            out[f"torch_matmul_{d}_{M}x{N}x{K}_tflops"] = round(2 * M * N * K / (ms * 1e-3) / 1e12, 2)
            print(f"{d} {M}x{N}x{K}", out[f"torch_matmul_{d}_{M}x{N}x{K}_tflops"], "TFLOP/s", flush=True)
            del a, w

    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, LLAMA3_8B["vocab_size"], (1, args.tokens), device="cuda", generator=g)
    for d, impl in [(d, impl) for d in dtypes for impl in args.attn.split(",")]:
        p = "" if d == "bf16" else d + "_"   # bf16 keys keep their earlier names
        cfg = LlamaConfig(**LLAMA3_8B, attn_implementation=impl)
        t0 = time.time()
        torch.set_default_dtype(tdt[d])
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg).eval()
        torch.set_default_dtype(torch.float32)
        out[f"{p}init_s"] = round(time.time() - t0, 1)
        captured = []
        hooks = [layer.register_forward_hook(lambda m, i, o: captured.append(
            (o[0] if isinstance(o, tuple) else o).float().cpu())) for layer in model.model.layers]

        def fwd():
            captured.clear()
            with torch.no_grad():
                logits = model(ids).logits
            return logits.float().cpu()

        fwd()
        torch.cuda.synchronize()
        times = []
        for _ in range(3):
            s = time.perf_counter()
            fwd()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - s) * 1e3)
        for h in hooks:
            h.remove()
        out[f"hf_{p}{impl}_forward_ms_best"] = round(min(times), 2)
        out[f"hf_{p}{impl}_forward_ms_mean"] = round(sum(times) / len(times), 2)
        print(d, impl, "hooks", times, flush=True)

        def bare():
            with torch.no_grad():
                return model(ids).logits

        bare()
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            s = time.perf_counter()
            bare()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - s) * 1e3)
        out[f"hf_{p}{impl}_forward_nohooks_ms_best"] = round(min(times), 2)
        out[f"hf_{p}{impl}_forward_nohooks_ms_mean"] = round(sum(times) / len(times), 2)
        print(d, impl, "no hooks", times, flush=True)
        del model
        torch.cuda.empty_cache()
    out["tokens"] = args.tokens
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
