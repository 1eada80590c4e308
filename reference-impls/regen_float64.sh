#!/usr/bin/env bash
# Re-makes every committed hf-float64*.safetensors trace with strict float64 (see hf_trace.py,
# float32_means_float64), on the GPU box's CPU. Results: $OUT/float64.tgz (same relative paths).
set -eu -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FIX="$HERE/../src/test/resources/fixtures"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
WORK="$(mktemp -d)"
cd "$FIX"
for t in */traces/hf-float64*.safetensors; do
  name="${t%%/*}"
  mkdir -p "$WORK/$(dirname "$t")"
  python3 "$HERE/hf_trace.py" --model "$name/model" --like "$t" --device cpu --check-hooks --out "$WORK/$t"
done
tar czf "${OUT:-/tmp}/float64.tgz" -C "$WORK" .
