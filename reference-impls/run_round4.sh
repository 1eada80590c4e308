#!/usr/bin/env bash
# Fourth device batch (prepared 2026-12-06, not yet run): the HF-planted float32 traces issue #16's catalog ids still
# lack (each made like the fixture's own hf-float32 trace), plus a bf16 copy of two of them. Then copy
# $OUT/round4.tgz's fixtures/ over src/test/resources/fixtures/ and run HuntTest (it hunts every planted-* trace).
# Output: $OUT/round4.tgz, $OUT/round4.log
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FIX="$HERE/../src/test/resources/fixtures"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
W="$(mktemp -d)"; OUT="${OUT:-/tmp}"; LOG="$OUT/round4.log"
P() { # fixture like-trace device name plants...
  local fx=$1 like=$2 dev=$3 name=$4; shift 4
  local args=(); for p in "$@"; do args+=(--plant "$p"); done
  mkdir -p "$W/fixtures/$fx/traces"
  python3 "$HERE/hf_trace.py" --model "$FIX/$fx/model" --like "$FIX/$fx/traces/$like" --device "$dev" "${args[@]}" \
    --out "$W/fixtures/$fx/traces/planted-$name.safetensors" 2>&1 | grep -v -e Warning -e "Loading weights" | tee -a "$LOG"
}
P glm4_moe hf-float32.safetensors cpu moe.bias_in_weights-float32 moe.bias_in_weights
P gpt_oss hf-float32.safetensors cpu rope.yarn_truncatetrue-float32 rope.yarn_truncate=true
P qwen3_moe hf-float32.safetensors cpu qk_norm.off-float32 qk_norm.off
P olmoe hf-float32.safetensors cpu qk_norm.off-float32 qk_norm.off
P llama-yarn-ds hf-float32-off40.safetensors cpu attn.no_yarn_mscale-float32-off40 attn.no_yarn_mscale
P qwen3_moe hf-bfloat16.safetensors cuda qk_norm.off-bfloat16 qk_norm.off
P glm4_moe hf-bfloat16.safetensors cuda moe.bias_in_weights-bfloat16 moe.bias_in_weights
tar czf "$OUT/round4.tgz" -C "$W" .
