#!/usr/bin/env bash
# Session-4 combined call (only one may come): #16 closure first, then #18 attention timings, then bench gpu.
set -u
S0=$(date +%s); el() { echo $(( $(date +%s) - S0 )); }
O=/tmp/o; mkdir -p $O/lead $O/cudamoe $O/bench
pack() { tar czf $OUT/all.tgz -C $O . 2>/dev/null; }
tar xJf .xfer/k/jre.txz -C /tmp && mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 JAVA=/tmp/jre/bin/java CP=/tmp/cp
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm,memory.total --format=csv | tee $O/lead/gpu.txt
J="$JAVA --add-modules jdk.incubator.vector -cp $CP"
W=/tmp/cudamoe; mkdir -p $W
( timeout 120 $J -Xmx24g modeldiff.cli.Main synth --shape gpt-oss-20b --layers 1 --out $W/gptoss > $O/cudamoe/synth-gptoss.log 2>&1; echo "rc=$?" >> $O/cudamoe/synth-gptoss.log ) &
SY=$!
timeout 230 $J -Xmx24g -Dmodeldiff.cuda.gemm=wgmma -Dmodeldiff.cuda.attention=tc modeldiff.forward.cuda.CudaSelfTest selftest src/test/resources/fixtures > $O/lead/selftest.log 2>&1
echo "== selftest rc=$? at +$(el)s"
grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|DIFFER|differs|near-tie|split|^mixtral" $O/lead/selftest.log | cut -c1-200 | head -40
pack
wait $SY; echo "== synth at +$(el)s: $(tail -1 $O/cudamoe/synth-gptoss.log)"
if [ -f $W/gptoss/config.json ]; then
  timeout 45 python3 reference-impls/hf_synth_moe.py --model $W/gptoss --tokens 256 --json $O/cudamoe/hf-gptoss.json --trace $W/hf-gptoss.safetensors > $O/cudamoe/hf-gptoss.log 2>&1
  echo "== gptoss HF rc=$? at +$(el)s"; grep -E '"(hf_forward_ms_best|hf_forward_ms_mean)"' $O/cudamoe/hf-gptoss.log
  timeout 75 $J -Xmx24g modeldiff.forward.cuda.CudaSelfTest moebench $W/gptoss $W/hf-gptoss.safetensors $O/cudamoe/cuda-gptoss.json 5 > $O/cudamoe/cuda-gptoss.log 2>&1
  echo "== gptoss cuda rc=$? at +$(el)s"; grep -E "uploaded|forward T|routing agreement|worst|logits" $O/cudamoe/cuda-gptoss.log | cut -c1-200 | head
fi
rm -rf $W; pack
OUT=$O timeout 150 bash .xfer/fa/run.sh 2>&1 | tail -40
echo "== fa at +$(el)s"; pack
LEFT=$(( 585 - $(el) ))
if [ $LEFT -gt 60 ]; then
  timeout $LEFT $J -Xmx24g modeldiff.cli.Main bench gpu --tokens 2048 --dtypes bf16 --no-streamed --hf-timeout 70 --json $O/bench/bench-gpu.json > $O/bench/bench-gpu.log 2>&1
  echo "== bench rc=$? at +$(el)s"; grep -E "attention|forward|ratio" $O/bench/bench-gpu.log | head -30
fi
pack
