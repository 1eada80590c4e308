#!/usr/bin/env bash
# Next GPU call (prepared 2026-12-06, not run: no device time was left). Kit: reference-impls/make-java-kit.sh .xfer/k;
# keep the tree under 64 MiB: reference-impls/travel-light.sh on (and off after). Run: DEADLINE=400 bash reference-impls/device-next.sh
# with carry [".xfer/k"]. It re-runs the self-test after the 2026-12-06 fixes (attention _var kernels, near-tie routing
# judgement) and measures the gpt-oss-20b synth (1 layer) through HF and cuda:bf16; then run .xfer/cudaperf-style bench:
#   $J modeldiff.cli.Main bench gpu --tokens 2048 --dtypes bf16,fp16 --no-streamed --json OUT.json
set -u
S=$(date +%s); el() { echo $(( $(date +%s) - S )); }
D=${DEADLINE:-210}
O=/tmp/o; mkdir -p $O/lead $O/cudaperf $O/cudamoe
pack() { tar czf $OUT/all.tgz -C $O . 2>/dev/null; }
tar xJf .xfer/k/jre.txz -C /tmp && mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv | tee $O/lead/gpu.txt
J="/tmp/jre/bin/java --add-modules jdk.incubator.vector -cp /tmp/cp"
W=/tmp/cudamoe; mkdir -p $W
( timeout 90 $J -Xmx24g modeldiff.cli.Main synth --shape gpt-oss-20b --layers 1 --out $W/gptoss > $O/cudamoe/synth-gptoss.log 2>&1; echo "rc=$?" >> $O/cudamoe/synth-gptoss.log ) &
SY=$!
timeout 240 $J -Xmx24g -Dmodeldiff.cuda.gemm=wgmma -Dmodeldiff.cuda.attention=tc modeldiff.forward.cuda.CudaSelfTest selftest src/test/resources/fixtures > $O/lead/selftest.log 2>&1
echo "== selftest rc=$? at +$(el)s"
grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|DIFFER|near-tie|^mixtral|^gpt_oss|^llama4|^deepseek" $O/lead/selftest.log | cut -c1-200 | head -30
pack
wait $SY; echo "== synth at +$(el)s: $(tail -1 $O/cudamoe/synth-gptoss.log)"
if [ -f $W/gptoss/config.json ]; then
  timeout 40 python3 reference-impls/hf_synth_moe.py --model $W/gptoss --tokens 256 --json $O/cudamoe/hf-gptoss.json --trace $W/hf-gptoss.safetensors > $O/cudamoe/hf-gptoss.log 2>&1
  echo "== gptoss HF rc=$? at +$(el)s"; grep -E '"(hf_forward_ms_best|hf_forward_ms_mean)"' $O/cudamoe/hf-gptoss.log
  timeout $(( D - $(el) )) $J -Xmx24g modeldiff.forward.cuda.CudaSelfTest moebench $W/gptoss $W/hf-gptoss.safetensors $O/cudamoe/cuda-gptoss.json 5 > $O/cudamoe/cuda-gptoss.log 2>&1
  echo "== gptoss cuda rc=$? at +$(el)s"; grep -E "uploaded|forward T|routing agreement|worst|logits" $O/cudamoe/cuda-gptoss.log | cut -c1-200 | head
fi
pack
