#!/usr/bin/env bash
# One run on the GPU box (docs/cuda.md, "Running on the GPU box"): the wgmma GEMM checks alone and the tensor-core
# attention checks alone (each in its own JVM, so a faulting kernel cannot take the rest down; a failure falls back to
# mma.sync / the CUDA-core attention), the full self-test (kernels + fixtures, streamed = resident), the Java bench and
# the HF bench. Logs under $OUT; a short summary on stdout. GEMM=wgmma ATT=tc skip the two separate checks (the
# gemm_wgmma_ws check alone runs unless WS=skip);
# SKIPSELF=1 skips the self-test, SKIPFORCED=1 the teacher-forced checks, SKIPHF=1 the HF bench; BENCH_TOKENS (default
# 2048) sets the bench's tokens. KIT: the folder with jre.tgz, modeldiff.jar, lib/ and hf_bench.py (src/main/cuda/make-kit.sh).
set -u
D=${KIT:-.device-cuda2}
S=$(date +%s)
t() { echo "== $1 at +$(( $(date +%s) - S ))s"; }
tar xzf $D/jre.tgz -C /tmp && export PATH=/tmp/jre/bin:$PATH JAVA_HOME=/tmp/jre
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
CP=$D/modeldiff.jar:$(ls $D/lib/*.jar | tr '\n' ':')
J="java -Xmx32g -cp $CP"
nvidia-smi -L | tee $OUT/gpu.txt
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,memory.used --format=csv | tee -a $OUT/gpu.txt
G=${GEMM:-}; A=${ATT:-}
if [ -z "$G" ]; then
  t wgmmacheck
  timeout 60 $J -Dmodeldiff.cuda.gemm=wgmma modeldiff.forward.cuda.CudaSelfTest gemmcheck wgmma > $OUT/checks.log 2>&1
  if [ $? = 0 ]; then G=wgmma; else G=mma; fi
fi
SKIP=false; [ "$G" = wgmma ] || [ "$G" = wgmma_ws ] || SKIP=true
# the opt-in warp-specialised GEMM alone too (WS=skip skips it): where it fails, the self-test leaves it out
SKIPWS=$SKIP
if [ "$SKIP" = false ] && [ "${WS:-}" != skip ]; then
  t wscheck
  timeout 60 $J modeldiff.forward.cuda.CudaSelfTest gemmcheck wgmma_ws >> $OUT/checks.log 2>&1 || SKIPWS=true
  [ "$G" = wgmma_ws ] && [ $SKIPWS = true ] && G=wgmma
fi
if [ -z "$A" ]; then
  t attncheck
  timeout 60 $J -Dmodeldiff.cuda.gemm=$G modeldiff.forward.cuda.CudaSelfTest attncheck >> $OUT/checks.log 2>&1
  if [ $? = 0 ]; then A=tc; else A=simt; fi
fi
grep -E "FAIL|OVERWRITTEN|Exception|Error" $OUT/checks.log | head -12
echo "chosen: gemm=$G attention=$A (gemm_wgmma_ws checks skipped: $SKIPWS)"
P="-Dmodeldiff.cuda.gemm=$G -Dmodeldiff.cuda.attention=$A -Dmodeldiff.cuda.skipWgmmaChecks=$SKIP -Dmodeldiff.cuda.skipWsChecks=$SKIPWS"
if [ "${SKIPSELF:-0}" != 1 ]; then
  t selftest
  timeout 170 $J $P modeldiff.forward.cuda.CudaSelfTest selftest src/test/resources/fixtures > $OUT/selftest.log 2>&1; echo "selftest rc=$?"
  grep -E "FAIL|OVERWRITTEN|checks:|ALL OK|FAILURES|Exception|differs|not loaded" $OUT/selftest.log | head -20
  sed -n '/== fixtures/,$p' $OUT/selftest.log | cut -c1-190 | head -16
fi
if [ "${SKIPFORCED:-0}" != 1 ]; then
  t forced
  timeout 120 $J $P modeldiff.forward.cuda.CudaSelfTest forced src/test/resources/fixtures > $OUT/forced.log 2>&1; echo "forced rc=$?"
  grep -vE "^WARNING|^SLF4J" $OUT/forced.log | cut -c1-200 | head -40
fi
t bench
timeout 170 $J $P modeldiff.forward.cuda.CudaSelfTest bench llama3-8b ${BENCH_TOKENS:-2048} $OUT/bench-cuda.json > $OUT/bench-java.log 2>&1; echo "bench rc=$?"
grep -vE '^ *"|^[{}]' $OUT/bench-java.log | tail -22
[ "${SKIPHF:-0}" = 1 ] && { t done; exit 0; }
t hf
timeout 150 python3 $D/hf_bench.py --tokens 2048 --json $OUT/bench-hf.json > $OUT/bench-hf.log 2>&1; echo "hf rc=$?"
grep -vE '^ *"|^[{}]' $OUT/bench-hf.log | tail -10
t done
