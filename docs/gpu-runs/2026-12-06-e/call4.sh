#!/usr/bin/env bash
set -u; OUT0=$OUT
O=/tmp/o6; mkdir -p $O
[ -x /tmp/jre/bin/java ] || tar xJf .xfer/k/jre.txz -C /tmp
[ -d /tmp/cp/modeldiff ] || { mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp; }
J="/tmp/jre/bin/java -Xmx12g --add-modules jdk.incubator.vector -cp /tmp/cp"
timeout 60 $J modeldiff.forward.cuda.CudaSelfTest gemmbench wgmma,wgmma_ws $O/gemmbench.json > $O/gemmbench.log 2>&1
echo "gemmbench rc=$?"; grep -E "^gemm_|Exception|Error" $O/gemmbench.log
timeout 40 python3 reference-impls/gemm_bench.py --json $O/torch.json --ours $O/gemmbench.json > $O/torch.log 2>&1
tail -8 $O/torch.log
timeout 90 $J -Dmodeldiff.cuda.gemm=wgmma_ws modeldiff.cli.Main bench gpu --tokens 2048 --dtypes bf16 --no-streamed --hf off --json $O/bench-ws.json > $O/bench-ws.log 2>&1
echo "bench ws rc=$?"; grep -E "^forward|gemm_wgmma_ws" $O/bench-ws.log | head
tar czf $OUT0/all6.tgz -C $O .
