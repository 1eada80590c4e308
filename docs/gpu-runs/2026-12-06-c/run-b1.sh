#!/usr/bin/env bash
# Lead's combined GPU call B1 (2026-12-06, session 3): self-test, forced, HF bf16 traces for the CPU-made fixtures,
# cudaperf's bench, cudamoe's synth bench. Everything under /tmp/o, tarred into $OUT/all.tgz after each step.
set -u
S=$(date +%s); el() { echo $(( $(date +%s) - S )); }
O=/tmp/o; mkdir -p $O/lead
pack() { tar czf $OUT/all.tgz -C $O . 2>/dev/null; }
tar xJf .xfer/k/jre.txz -C /tmp && mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp
export JAVA=/tmp/jre/bin/java CP=/tmp/cp HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm,memory.total --format=csv | tee $O/lead/gpu.txt
F=src/test/resources/fixtures; W=/tmp/bf16
(
  for fx in deepseek_v3 deepseek_v3-plain llama4_text; do
    mkdir -p $W/fixtures/$fx/traces
    timeout 60 python3 reference-impls/hf_trace.py --model $F/$fx/model --like $F/$fx/traces/hf-float32.safetensors \
      --dtype bfloat16 --device cuda --out $W/fixtures/$fx/traces/hf-bfloat16.safetensors
  done
  timeout 60 python3 reference-impls/hf_trace.py --model $F/deepseek_v3/model --like $F/deepseek_v3/traces/hf-float32.safetensors \
    --dtype bfloat16 --device cuda --experts default --out $W/fixtures/deepseek_v3/traces/grouped-bfloat16.safetensors
  mkdir -p $W/fixtures/qwen3_moe/traces $W/fixtures/glm4_moe/traces
  timeout 60 python3 reference-impls/hf_trace.py --model $F/qwen3_moe/model --like $F/qwen3_moe/traces/hf-bfloat16.safetensors \
    --device cuda --plant qk_norm.off --out $W/fixtures/qwen3_moe/traces/planted-qk_norm.off-bfloat16.safetensors
  timeout 60 python3 reference-impls/hf_trace.py --model $F/glm4_moe/model --like $F/glm4_moe/traces/hf-bfloat16.safetensors \
    --device cuda --plant moe.bias_in_weights --out $W/fixtures/glm4_moe/traces/planted-moe.bias_in_weights-bfloat16.safetensors
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  tar czf $O/lead/bf16.tgz -C $W fixtures
) > $O/lead/bf16.log 2>&1 &
BG=$!
J="$JAVA -Xmx24g --add-modules jdk.incubator.vector -cp $CP"
timeout 200 $J -Dmodeldiff.cuda.gemm=wgmma -Dmodeldiff.cuda.attention=tc modeldiff.forward.cuda.CudaSelfTest selftest $F > $O/lead/selftest.log 2>&1
echo "== selftest rc=$? at +$(el)s"
grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|differs|DIFFER|not loaded|skipped|refused" $O/lead/selftest.log | cut -c1-220 | head -40
pack
timeout 70 $J modeldiff.forward.cuda.CudaSelfTest forced $F > $O/lead/forced.log 2>&1
echo "== forced rc=$? at +$(el)s"
grep -E "FAIL|Exception|only " $O/lead/forced.log | cut -c1-220 | head -20
wait $BG; echo "== bf16 traces at +$(el)s"; grep -iE "error|Traceback|wrote|torch" $O/lead/bf16.log | head -12
pack
OUT=$O bash .xfer/cudaperf/run.sh 2>&1 | tail -40
echo "== cudaperf at +$(el)s"; pack
OUT=$O bash .xfer/cudamoe/run.sh 2>&1 | tail -30
echo "== cudamoe at +$(el)s"; pack
