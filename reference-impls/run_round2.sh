#!/usr/bin/env bash
# Second device batch: trains the demo model and traces it (clean and with planted bugs), and adds
# planted-bug traces to the committed fixtures for the hunt's tests. Output: $OUT/round2.tgz, $OUT/round2.log
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FIX="$HERE/../src/test/resources/fixtures"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
W="$(mktemp -d)"; OUT="${OUT:-/tmp}"; LOG="$OUT/round2.log"
T() { python3 "$HERE/hf_trace.py" "$@" 2>&1 | grep -v -e Warning -e "Loading weights" | tee -a "$LOG"; }

# --- demo model: Gemma-family, byte tokens; the sentence below is the demo's input.
python3 "$HERE/train_demo.py" --out "$W/demo/model" 2>&1 | tee -a "$LOG"
TOK=$(python3 -c "print(','.join(str(b) for b in [256]+list(b'The quick brown fox jumps over the lazy dog. It returns the')))")
mkdir -p "$W/demo/traces"
T --model "$W/demo/model" --dtype float32 --device cpu --tokens "$TOK" --out "$W/demo/traces/hf-float32.safetensors"
T --model "$W/demo/model" --dtype bfloat16 --device cuda --tokens "$TOK" --out "$W/demo/traces/hf-bfloat16.safetensors"
T --model "$W/demo/model" --dtype bfloat16 --device cuda --tokens "$TOK" --plant act.gelu_exact --out "$W/demo/traces/planted-act.gelu_exact-bfloat16.safetensors"
T --model "$W/demo/model" --dtype bfloat16 --device cuda --tokens "$TOK" --plant norm.cast_before_weight --out "$W/demo/traces/planted-norm.cast_before_weight-bfloat16.safetensors"
T --model "$W/demo/model" --dtype bfloat16 --device cuda --tokens "$TOK" --position-offset 8150 --out "$W/demo/traces/hf-bfloat16-off8150.safetensors"
T --model "$W/demo/model" --dtype bfloat16 --device cuda --tokens "$TOK" --position-offset 8150 --plant rope.bf16_angles --out "$W/demo/traces/planted-rope.bf16_angles-bfloat16-off8150.safetensors"

# --- more planted bugs on the fixtures (one per fix id HF can express; fp32 and bf16; pairs)
P() { # fixture dtype device name plants...
  local fx=$1 dt=$2 dev=$3 name=$4; shift 4
  local args=(); for p in "$@"; do args+=(--plant "$p"); done
  mkdir -p "$W/fixtures/$fx/traces"
  T --model "$FIX/$fx/model" --like "$FIX/$fx/traces/hf-$dt.safetensors" --dtype "$dt" --device "$dev" "${args[@]}" \
    --out "$W/fixtures/$fx/traces/planted-$name-$dt.safetensors"
}
P llama float32 cpu rope.scaling_ignored rope.scaling_ignored
P llama bfloat16 cuda rope.inv_freq_lowp rope.inv_freq_lowp
P llama float32 cpu qk.interleaved qk.interleaved
P llama float32 cpu norm.unit_offset norm.unit_offset
P llama bfloat16 cuda softmax.lowp softmax.lowp
P gemma float32 cpu norm.no_unit_offset norm.no_unit_offset
P gemma float32 cpu embed.scale_none embed.scale_none
P gemma bfloat16 cuda act.gelu_exact act.gelu_exact
P gemma2 float32 cpu logits.no_softcap logits.no_softcap
P gemma2 float32 cpu attn.scale16 attn.scale=16
P gemma2 bfloat16 cuda attn.no_softcap+logits.no_softcap attn.no_softcap logits.no_softcap
P phi3 float32 cpu mlp.swap_gate_up mlp.swap_gate_up
P phi3 float32 cpu rope.partial1 rope.partial=1.0
P nemotron bfloat16 cuda rope.partial1 rope.partial=1.0
P mistral bfloat16 cuda window4 window=4  # made as window4+norm.eps1e-5; that eps is the config's own, dropped (header rewritten)
P qwen3 float32 cpu rope.theta10000 rope.theta=10000  # qwen3 defaults to 1e6
P gpt2 float32 cpu act.gelu_exact act.gelu_exact
# clean traces at positions beyond 2048 for the rope hunt, and its bug in bf16 at 3000 exists already.
tar czf "$OUT/round2.tgz" -C "$W" .
ls -la "$OUT"
