#!/usr/bin/env bash
set -u; OUT0=$OUT
S0=$(date +%s); el() { echo $(( $(date +%s) - S0 )); }
O=/tmp/o3; mkdir -p $O
[ -x /tmp/jre/bin/java ] || tar xJf .xfer/k/jre.txz -C /tmp
[ -d /tmp/cp/modeldiff ] || { mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp; }
export JAVA=/tmp/jre/bin/java CP=/tmp/cp OUT=$O
timeout 170 bash .xfer/mgpu/run.sh 2>&1 | tail -30
echo "== mgpu at +$(el)s"
J="$JAVA --add-modules jdk.incubator.vector -cp $CP"
mkdir -p $O/bench
timeout $(( 330 - $(el) )) $J -Xmx24g -Dmodeldiff.cuda.faPlain=occ modeldiff.cli.Main bench gpu --tokens 2048 --dtypes bf16,fp16 --no-streamed --hf-timeout 70 --json $O/bench/bench-gpu.json > $O/bench/bench-gpu.log 2>&1
echo "== bench rc=$? at +$(el)s"; grep -E "forward|ratio" $O/bench/bench-gpu.log | head -30
tar czf /tmp/all3.tgz -C $O . ; cp /tmp/all3.tgz $OUT0/all3.tgz 2>/dev/null
