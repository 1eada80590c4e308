#!/usr/bin/env bash
# Third device batch: planted-bug traces the first rounds lacked (an fp32 attention scale, inv_freq rounding at
# positions where it differs from bf16 angles, fp16 plants, a bf16 pair). Output: $OUT/round3.tgz, $OUT/round3.log
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FIX="$HERE/../src/test/resources/fixtures"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
W="$(mktemp -d)"; OUT="${OUT:-/tmp}"; LOG="$OUT/round3.log"
P() { # fixture like-trace device name plants...
  local fx=$1 like=$2 dev=$3 name=$4; shift 4
  local args=(); for p in "$@"; do args+=(--plant "$p"); done
  mkdir -p "$W/fixtures/$fx/traces"
  python3 "$HERE/hf_trace.py" --model "$FIX/$fx/model" --like "$FIX/$fx/traces/$like" --device "$dev" "${args[@]}" \
    --out "$W/fixtures/$fx/traces/planted-$name.safetensors" 2>&1 | grep -v -e Warning -e "Loading weights" | tee -a "$LOG"
}
P gemma2 hf-float32.safetensors cpu attn.scale16-float32 attn.scale=16
P llama hf-bfloat16-off3000.safetensors cuda rope.inv_freq_lowp-bfloat16-off3000 rope.inv_freq_lowp
P qwen3 hf-float32.safetensors cpu rope.theta10000-float32 rope.theta=10000
P gemma hf-float16.safetensors cuda norm.cast_before_weight-float16 norm.cast_before_weight
P llama hf-float16.safetensors cuda rope.scaling_ignored-float16 rope.scaling_ignored
P gemma hf-bfloat16.safetensors cuda embed.scale_fp32+act.gelu_exact-bfloat16 embed.scale_fp32 act.gelu_exact
P gemma3 hf-bfloat16.safetensors cuda norm.cast_before_weight-bfloat16 norm.cast_before_weight
tar czf "$OUT/round3.tgz" -C "$W" .
