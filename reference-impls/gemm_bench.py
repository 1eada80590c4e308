#!/usr/bin/env python3
"""torch.matmul bf16 at modeldiff's GEMM bench shapes (CudaSelfTest.gemmShapes: 4096^3 and the llama3-8b forward's at
--tokens), timed as hf_bench.py times them (CUDA events, one warm-up, 20 reps), with the same JSON keys
(torch_matmul_bf16_MxNxK_tflops); then, given --ours (CudaSelfTest gemmbench's JSON), a table of our kernels'
TFLOP/s over torch's per shape (issue #18). Without a GPU it says so and exits 2.

Usage (on the GPU box): python3 reference-impls/gemm_bench.py --json OUT.json [--ours gemmbench.json]
"""
import argparse
import json
import re
import sys

from cuda_timing import time_cuda


def shapes(T):
    return ((4096, 4096, 4096), (T, 4096, 4096), (T, 1024, 4096), (T, 14336, 4096), (T, 4096, 14336), (T, 128256, 4096))


def time_torch(T, reps=20):
    import torch
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    for M, N, K in shapes(T):
        a = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
        ms = time_cuda(lambda: torch.matmul(a, w.t()), reps)
        out[f"torch_matmul_bf16_{M}x{N}x{K}_ms"] = round(ms, 4)
        out[f"torch_matmul_bf16_{M}x{N}x{K}_tflops"] = round(2 * M * N * K / (ms * 1e-3) / 1e12, 2)
        del a, w
    return out


KEY = re.compile(r"gemm_(wgmma_ws|wgmma|mma|wmma)_(\d+x\d+x\d+)(_splitk\d+)?_tflops")


def table(ours, torch_side):
    """Rows per shape: each kernel's TFLOP/s (split-K off; best of off / auto in brackets where it splits), over torch."""
    per = {}
    for k, v in ours.items():
        m = KEY.fullmatch(k)
        if m:
            per.setdefault(m.group(2), {}).setdefault(m.group(1), []).append((m.group(3) or "", v))
    lines = []
    for shape, kernels in per.items():
        t = torch_side.get(f"torch_matmul_bf16_{shape}_tflops")
        cells = []
        for name in sorted(kernels):
            best = max(v for _, v in kernels[name])
            off = dict(kernels[name]).get("", best)
            ratio = f" = {best / t:.2f} torch" if t else ""
            cells.append(f"{name} {off:.1f}" + (f" (split {best:.1f})" if best != off else "") + ratio)
        ws, wg = kernels.get("wgmma_ws"), kernels.get("wgmma")
        rel = f"; ws/wgmma {max(v for _, v in ws) / max(v for _, v in wg):.2f}" if ws and wg else ""
        lines.append(f"{shape:>20}: torch {t if t else '-'} | " + " | ".join(cells) + rel)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--json")
    ap.add_argument("--ours", help="CudaSelfTest gemmbench's JSON: print our TFLOP/s over torch's")
    ap.add_argument("--torch-json", help="an earlier run's torch JSON instead of timing now")
    args = ap.parse_args()
    if args.torch_json:
        with open(args.torch_json) as f:
            out = json.load(f)
    else:
        try:
            import torch
            if not torch.cuda.is_available():
                raise RuntimeError("no CUDA device")
        except Exception as e:  # noqa: BLE001 - one clear line, exit 2
            print(f"gemm_bench: cannot time torch.matmul: {e}", file=sys.stderr)
            return 2
        out = time_torch(args.tokens)
        if args.json:
            with open(args.json + ".tmp", "w") as f:
                json.dump(out, f, indent=1)
            import os
            os.replace(args.json + ".tmp", args.json)
    for k, v in out.items():
        if k.endswith("_tflops"):
            print(k, v)
    if args.ours:
        with open(args.ours) as f:
            ours = json.load(f)
        print("\n".join(table(ours, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
