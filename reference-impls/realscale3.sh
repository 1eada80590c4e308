#!/usr/bin/env bash
# Issue #20 point 5 on the GPU box: a Gemma-shaped model of real size (make_realscale.py), HF transformers traces of
# 512 tokens (bf16 / fp16, every sub-layer probe unless the job says layers), each judged by modeldiff's
# teacher-forced hunt. HF traces are made one after another on the GPU while LANES hunts run on the CPUs.
# Needs the Java kit (make-java-kit.sh) in $KIT. Env: LAYERS (18), LANES (2), THREADS per lane (8), DEADLINE
# (seconds from start after which no hunt starts; 540), JOBS (names from the table below, in order; default all).
# Output: $OUT/tf.tgz (log, hunt JSON), rewritten after every step so that a partial result survives.
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
KIT=${KIT:-.xfer/k}; W=/tmp/rs; OUT="${OUT:-/tmp}"; START=$(date +%s)
mkdir -p $W/traces $W/out; LOG="$W/out/realscale.log"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
log() { echo "[$(date +%T) +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
pack() { (flock 9; tar czf "$OUT/tf.tgz.tmp" -C $W/out . && mv "$OUT/tf.tgz.tmp" "$OUT/tf.tgz") 9>$W/pack.lock; }
[ -x /tmp/jre/bin/java ] || tar xJf $KIT/jre.txz -C /tmp
[ -d /tmp/cp/modeldiff ] || { mkdir -p /tmp/cp && tar xJf $KIT/cp.txz -C /tmp/cp; }
L=${LAYERS:-18}; HALF="$((L / 2))-$((L - 1))"; LANES=${LANES:-2}; DEADLINE=${DEADLINE:-540}
J="/tmp/jre/bin/java -Xmx$(( 100 / LANES ))g -XX:+UseParallelGC -Dmodeldiff.threads=${THREADS:-8} --add-modules jdk.incubator.vector -cp /tmp/cp modeldiff.cli.Main"
log "$(nvidia-smi --query-gpu=name --format=csv,noheader); $(nproc) cores; layers $L; lanes $LANES"
# name | dtype | position offset | probes | plant arguments
TABLE="
clean-bf16|bfloat16|0|all|
norm-bf16|bfloat16|0|all|--plant norm.cast_before_weight
normhalf-bf16|bfloat16|0|all|--plant norm.cast_before_weight --plant-layers $HALF
embed-bf16|bfloat16|0|all|--plant embed.scale_fp32
invfreq-bf16|bfloat16|0|all|--plant rope.inv_freq_lowp
angles4000-bf16|bfloat16|4000|all|--plant rope.bf16_angles
norm-layers-bf16|bfloat16|0|layers|--plant norm.cast_before_weight
invfreqhalf-bf16|bfloat16|0|all|--plant rope.inv_freq_lowp --plant-layers $HALF
angleshalf4000-bf16|bfloat16|4000|all|--plant rope.bf16_angles --plant-layers $HALF
normhalf-layers-bf16|bfloat16|0|layers|--plant norm.cast_before_weight --plant-layers $HALF
clean-layers-bf16|bfloat16|0|layers|
clean-fp16|float16|0|all|
norm-fp16|float16|0|all|--plant norm.cast_before_weight
normhalf-fp16|float16|0|all|--plant norm.cast_before_weight --plant-layers $HALF
embed-fp16|float16|0|all|--plant embed.scale_fp32
invfreq-fp16|float16|0|all|--plant rope.inv_freq_lowp
angles4000-fp16|float16|4000|all|--plant rope.bf16_angles
"
JOBS=${JOBS:-$(echo "$TABLE" | cut -d'|' -f1 | tr '\n' ' ')}
B=$(python3 -c "import random;r=random.Random(2);print(','.join(str(r.randrange(3,32000)) for _ in range(512)))")
if [ ! -f $W/model/config.json ]; then
  python3 "$HERE/make_realscale.py" $W/model $L 2>&1 | grep -v -e Warning -e Writing | tee -a "$LOG"
  log "model written"
fi
trace() { # one HF trace per job, in order, on the GPU
  for name in $JOBS; do
    IFS='|' read -r _ dt off pr plant <<<"$(echo "$TABLE" | grep "^$name|")"
    local t0=$(date +%s.%N)
    python3 "$HERE/hf_trace.py" --model $W/model --dtype $dt --device cuda --tokens "$B" --position-offset $off \
      --probes $pr $plant --out $W/traces/$name.safetensors 2>&1 | grep -e wrote -e plant -e Error | tee -a "$LOG"
    log "hf $name: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
    touch $W/traces/$name.done
  done
}
lane() { # hunts of the jobs with index = $1 mod LANES
  local i=0
  for name in $JOBS; do
    i=$((i + 1)); [ $(( (i - 1) % LANES )) = "$1" ] || continue
    while [ ! -f $W/traces/$name.done ]; do sleep 1; done
    [ -f $W/traces/$name.safetensors ] || { log "no trace for $name"; continue; }
    local left=$(( DEADLINE - ($(date +%s) - START) ))
    [ $left -gt 30 ] || { log "hunt $name: not started (deadline)"; continue; }
    local t0=$(date +%s.%N)
    timeout $left $J hunt --model $W/model --target $W/traces/$name.safetensors --json $W/out/$name.hunt.json --force \
      > $W/out/$name.hunt.log 2>&1
    local rc=$?
    log "hunt $name: rc=$rc, $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s: $(grep -v -e WARNING -e '^$' $W/out/$name.hunt.log | grep -v '^\s' | head -3 | tr '\n' ' ')"
    rm -f $W/traces/$name.safetensors
    pack
  done
}
trace &
for l in $(seq 0 $((LANES - 1))); do lane $l & done
wait
log done
pack
