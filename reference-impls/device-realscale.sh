#!/usr/bin/env bash
# Kit: reference-impls/make-java-kit.sh $KIT (default .xfer/k, git-ignored, passed as carry). SKIPCUDA=1 skips the CUDA
# self-test; the other variables go to realscale3.sh. Example (2026-12-06, call 2):
#   JOBS="clean-bf16 norm-bf16 ..." DEADLINE=525 LAYERS=9 LANES=2 THREADS=8 bash reference-impls/device-realscale.sh
# One GPU-box call: CUDA self-test on every fixture (issue #15) beside the real-scale teacher-forced hunts (issue #20 point 5)
cd "$(dirname "$0")/.."; K=${KIT:-.xfer/k}
tar xJf $K/jre.txz -C /tmp; mkdir -p /tmp/cp; tar xJf $K/cp.txz -C /tmp/cp
JC="/tmp/jre/bin/java -Xmx16g -Dmodeldiff.threads=2 --add-modules jdk.incubator.vector -cp /tmp/cp"
ST=modeldiff.forward.cuda.CudaSelfTest
if [ "${SKIPCUDA:-0}" != 1 ]; then (
  if timeout 60 $JC -Dmodeldiff.cuda.gemm=wgmma $ST gemmcheck wgmma > $OUT/cuda-checks.log 2>&1; then G=wgmma; S=false; else G=mma; S=true; fi
  if timeout 60 $JC -Dmodeldiff.cuda.gemm=$G $ST attncheck >> $OUT/cuda-checks.log 2>&1; then A=tc; else A=simt; fi
  echo "chosen gemm=$G attention=$A" >> $OUT/cuda-checks.log
  timeout ${CUDA_SECONDS:-400} $JC -Dmodeldiff.cuda.gemm=$G -Dmodeldiff.cuda.attention=$A -Dmodeldiff.cuda.skipWgmmaChecks=$S $ST selftest src/test/resources/fixtures > $OUT/cuda-selftest.log 2>&1
  echo "selftest rc=$?" >> $OUT/cuda-selftest.log ) &
fi
bash reference-impls/realscale3.sh
wait
grep -E "checks:|ALL OK|FAILURES|rc=|FAIL|skipped" $OUT/cuda-checks.log $OUT/cuda-selftest.log 2>/dev/null | head -30
