#!/usr/bin/env python3
"""torch's side of issue #18's attention timings: torch.nn.functional.scaled_dot_product_attention, bf16, on the
shapes `CudaSelfTest attnbench` times (AttentionBench.SHAPES: keep the two lists the same), with the same FLOP count
(4 * head_dim * heads * visible (query, key) pairs; causal: T(T+1)/2 pairs; window w: sum over t of min(t + 1, w)).

Causal shapes use is_causal=True with enable_gqa=True, timed with torch's own backend choice; `_backend` records the
first backend, in the order flash, efficient, cudnn, math, that accepts the inputs (a hint: torch's choice may differ). The sliding-window shape needs an explicit boolean mask, which rules out the flash backend: its time is
torch's best with a mask, not FlashAttention's, and is labelled so. Inputs: standard normal q / k / v of layout
[1, heads, T, head_dim] (what sdpa takes); the numbers do not depend on the values.

Usage (on the GPU box): python3 reference-impls/attn_bench.py [--json OUT.json] [--reps 20]
"""
import argparse
import json
import sys

from cuda_timing import time_cuda

SHAPES = [(512, 32, 8, 128, 0), (2048, 32, 8, 128, 0), (4096, 32, 8, 128, 0), (2048, 32, 8, 64, 0),
          (4096, 32, 8, 64, 0), (4096, 32, 8, 128, 1024)]


def pairs(T, window):
    if window <= 0 or window >= T:
        return T * (T + 1) // 2
    return window * (window + 1) // 2 + (T - window) * window


def key(T, heads, kv, hd, window):
    return f"T{T}_h{heads}_{kv}_d{hd}" + (f"_w{window}" if window > 0 else "")




def backend_of(torch, F, q, k, v, causal, mask):
    """The first sdpa backend that accepts these inputs, in torch's own preference order."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for b in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
        try:
            with sdpa_kernel([b]):
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=True)
            return b.name.lower()
        except RuntimeError:
            continue
    return "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "flops": "4*hd*heads*visible pairs (causal: T(T+1)/2)"}
    g = torch.Generator(device="cuda").manual_seed(0)
    for (T, heads, kv, hd, window) in SHAPES:
        q = torch.randn(1, heads, T, hd, device="cuda", dtype=torch.bfloat16, generator=g)
        k = torch.randn(1, kv, T, hd, device="cuda", dtype=torch.bfloat16, generator=g)
        v = torch.randn(1, kv, T, hd, device="cuda", dtype=torch.bfloat16, generator=g)
        mask, causal = None, True
        if window > 0:   # query t sees keys t - window < s <= t
            t = torch.arange(T, device="cuda")
            mask = (t[None, :] <= t[:, None]) & (t[:, None] - t[None, :] < window)
            causal = False
        name = key(T, heads, kv, hd, window)
        backend = backend_of(torch, F, q, k, v, causal, mask)
        ms = time_cuda(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                                                        enable_gqa=True), a.reps)
        tflops = 4.0 * hd * heads * pairs(T, window) / (ms * 1e-3) / 1e12
        out[f"{name}_torch_sdpa_ms"] = round(ms, 4)
        out[f"{name}_torch_sdpa_tflops"] = round(tflops, 2)
        out[f"{name}_torch_sdpa_backend"] = backend + (" (explicit mask)" if mask is not None else "")
        print(f"torch sdpa {name:22s} {ms:.3f} ms {tflops:.1f} TFLOP/s  backend {out[name + '_torch_sdpa_backend']}")
        del q, k, v, mask
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        import os
        os.replace(a.json + ".tmp", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
