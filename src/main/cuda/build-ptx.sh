#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu to PTX into $1: for compute capability 9.0 (Hopper; the driver JIT-compiles it), and
# *_wgmma.cu for 9.0a (wgmma; loaded as an optional module of its own). Without nvcc it prints why and succeeds: the
# build (CI) goes on and the cuda passes report themselves unavailable.
set -euo pipefail
out="${1:?usage: build-ptx.sh OUTDIR}"
here="$(cd "$(dirname "$0")" && pwd)"
nvcc="$(command -v nvcc || true)"
[ -z "$nvcc" ] && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] && nvcc="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
if [ -z "$nvcc" ]; then
  echo "[cuda] nvcc not found: PTX not built; cuda:fp32 / cuda:bf16 will report themselves unavailable"
  exit 0
fi
mkdir -p "$out"
newest="$(ls -t "$here"/*.cu "$here"/*.cuh | head -1)"
for cu in "$here"/*.cu; do
  name="$(basename "$cu" .cu)"
  arch=compute_90
  case "$name" in *_wgmma) arch=compute_90a ;; esac
  if [ ! "$out/$name.ptx" -nt "$newest" ]; then
    "$nvcc" -arch=$arch -ptx -O3 -o "$out/$name.ptx" "$cu"
    echo "[cuda] $cu -> $out/$name.ptx ($arch)"
  fi
done
