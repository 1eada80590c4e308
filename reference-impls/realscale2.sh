#!/usr/bin/env bash
# Issue #20 point 5, second batch (the tie rates are now compiled in, calibrated on input A by realscale.sh): the
# 2.05B Gemma-shaped model, HF bf16/fp16 traces of input B (512 tokens, every sub-layer probe), judged by modeldiff's
# teacher-forced hunt and compare. Needs $JAVA and $CP. Output: $OUT/tf.tgz (log + JSON), written as it goes.
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
W=/tmp/rs; mkdir -p $W/traces $W/out; OUT="${OUT:-/tmp}"; LOG="$W/out/realscale2.log"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
J="$JAVA -Xmx100g -Dmodeldiff.threads=${THREADS:-12} --add-modules jdk.incubator.vector -cp $CP modeldiff.cli.Main"
log() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
pack() { tar czf "$OUT/tf.tgz.tmp" -C $W/out . && mv "$OUT/tf.tgz.tmp" "$OUT/tf.tgz"; }
log "$(nvidia-smi --query-gpu=name --format=csv,noheader); $(nproc) cores"
L=${LAYERS:-18}; HALF="$((L / 2))-$((L - 1))"
[ -f $W/model/config.json ] || python3 "$HERE/make_realscale.py" $W/model $L 2>&1 | grep -v -e Warning -e Writing | tee -a "$LOG"
B=$(python3 -c "import random;r=random.Random(2);print(','.join(str(r.randrange(3,32000)) for _ in range(512)))")
T() { # name dtype offset probes [plant args...]
  local name=$1 dt=$2 off=$3 pr=$4; shift 4
  local t0=$(date +%s.%N)
  python3 "$HERE/hf_trace.py" --model $W/model --dtype $dt --device cuda --tokens "$B" --position-offset $off \
    --probes $pr "$@" --out $W/traces/$name.safetensors 2>&1 | grep -e wrote -e plant -e Error | tee -a "$LOG"
  log "hf $name: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
  touch $W/traces/$name.done
}
wait_for() { while [ ! -f $W/traces/$1.done ]; do sleep 1; done; }
J1() { # what name args...   (timed java step)
  local what=$1 name=$2; shift 2
  wait_for $name
  local t0=$(date +%s.%N)
  $J $what --model $W/model "$@" 2>&1 | grep -v -e WARNING -e "^$" | tee -a "$LOG"
  log "$what $name: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
  pack
}
(
T B-normhalf-bf16 bfloat16 0 all --plant norm.cast_before_weight --plant-layers $HALF
T B-clean-bf16 bfloat16 0 all
T B-clean-fp16 float16 0 all
T B-norm-bf16 bfloat16 0 all --plant norm.cast_before_weight
T B-norm-layers-bf16 bfloat16 0 layers --plant norm.cast_before_weight
) &
J1 hunt B-normhalf-bf16 --target $W/traces/B-normhalf-bf16.safetensors --json $W/out/B-normhalf-bf16.hunt.json --force
J1 compare B-clean-bf16 --reference lowp:bf16 --candidate $W/traces/B-clean-bf16.safetensors --no-propagated --json $W/out/B-clean-bf16.compare.json --force
J1 compare B-clean-fp16 --reference lowp:fp16 --candidate $W/traces/B-clean-fp16.safetensors --no-propagated --json $W/out/B-clean-fp16.compare.json --force
J1 compare B-norm-bf16 --reference lowp:bf16 --candidate $W/traces/B-norm-bf16.safetensors --no-propagated --json $W/out/B-norm-bf16.compare.json --force
J1 hunt B-norm-layers-bf16 --target $W/traces/B-norm-layers-bf16.safetensors --json $W/out/B-norm-layers-bf16.hunt.json --force
wait
log done
pack
