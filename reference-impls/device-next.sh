#!/usr/bin/env bash
# Next GPU call (prepared 2026-12-06, fourth session). Kit: `mvn -B -o -q package -DskipTests &&
# bash reference-impls/make-java-kit.sh .xfer/k`; keep the tree under 64 MiB: `reference-impls/travel-light.sh on` (and
# `off` after; never commit in between). Carry [".xfer/k"].
#   One GPU:  bash reference-impls/device-next.sh            — wgmmacheck with the K-dependent bound (KernelChecks.gemm16Bound,
#             not yet run on a GPU), the full self-test with the gemm_wgmma_ws checks on, the bench scripts after their
#             shared timing loop (cuda_timing.py).
#   2–8 GPUs: MULTI=1 bash reference-impls/device-next.sh    — only issue #18's multi-GPU run (its steps fill a call)
#             (reference-impls/device-multigpu.sh: the split over real devices, bit-identity, the full Llama-3-70B shape
#             split vs streamed). Ask `status` first: multi-GPU kinds were not lent on 2026-12-06.
set -u; OUT0=$OUT
S0=$(date +%s); el() { echo $(( $(date +%s) - S0 )); }
O=/tmp/onext; mkdir -p $O
pack() { tar czf $OUT0/all.tgz -C $O . 2>/dev/null; }
tar xJf .xfer/k/jre.txz -C /tmp && mkdir -p /tmp/cp && tar xJf .xfer/k/cp.txz -C /tmp/cp
export JAVA=/tmp/jre/bin/java CP=/tmp/cp OUT=$O HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
J="$JAVA -Xmx24g --add-modules jdk.incubator.vector -cp $CP"
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv | tee $O/gpu.txt
if [ "${MULTI:-0}" = 1 ]; then
  bash reference-impls/device-multigpu.sh 2>&1 | tail -40
  echo "== multigpu at +$(el)s"; pack
  exit 0
fi
timeout 70 $J modeldiff.forward.cuda.CudaSelfTest wgmmacheck > $O/wgmmacheck.log 2>&1
echo "== wgmmacheck rc=$? at +$(el)s"; grep -E "FAIL|wgmma checks:|ALL OK|FAILURES|Exception" $O/wgmmacheck.log | head -12
pack
timeout 170 $J -Dmodeldiff.cuda.gemm=wgmma -Dmodeldiff.cuda.attention=tc modeldiff.forward.cuda.CudaSelfTest selftest src/test/resources/fixtures > $O/selftest.log 2>&1
echo "== selftest rc=$? at +$(el)s"
grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|differs|not loaded" $O/selftest.log | cut -c1-220 | head -30
pack
timeout 30 python3 reference-impls/gemm_bench.py --json $O/gemm-torch.json > $O/gemm-torch.log 2>&1; echo "== gemm_bench.py rc=$?"
timeout 30 python3 reference-impls/attn_bench.py --json $O/attn-torch.json > $O/attn-torch.log 2>&1; echo "== attn_bench.py rc=$?"
pack
