#!/usr/bin/env bash
# Session-4 final call: the warp-specialised GEMM (checks + timings vs torch), the self-test after the merges, bench gpu.
set -u; OUT0=$OUT
S0=$(date +%s); el() { echo $(( $(date +%s) - S0 )); }
O=/tmp/o5; mkdir -p $O/lead $O/bench
pack() { tar czf $OUT0/all5.tgz -C $O . 2>/dev/null; }
tar xJf .xfer/k/jre.txz -C /tmp && mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 JAVA=/tmp/jre/bin/java CP=/tmp/cp OUT=$O
J="$JAVA --add-modules jdk.incubator.vector -cp $CP"
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv | tee $O/lead/gpu.txt
timeout 125 bash .xfer/gemm/run.sh 2>&1 | tail -45
echo "== gemm at +$(el)s"; pack
SKIP=""; grep -q "ALL OK" $O/gemm/wgmmacheck.log 2>/dev/null || SKIP="-Dmodeldiff.cuda.skipWsChecks=true"
echo "skip flag: '$SKIP'"
timeout 170 $J -Xmx24g $SKIP -Dmodeldiff.cuda.gemm=wgmma -Dmodeldiff.cuda.attention=tc modeldiff.forward.cuda.CudaSelfTest selftest src/test/resources/fixtures > $O/lead/selftest.log 2>&1
echo "== selftest rc=$? at +$(el)s"
grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|differs|not loaded" $O/lead/selftest.log | cut -c1-220 | head -30
pack
LEFT=$(( 500 - $(el) ))
if [ $LEFT -gt 40 ]; then
  timeout $LEFT $J -Xmx24g $SKIP modeldiff.cli.Main bench gpu --tokens 2048 --dtypes bf16 --no-streamed --hf-timeout 70 --json $O/bench/bench-gpu.json > $O/bench/bench-gpu.log 2>&1
  echo "== bench rc=$? at +$(el)s"; grep -E "forward|ratio|wgmma_ws|attention bf16" $O/bench/bench-gpu.log | head -30
fi
pack
