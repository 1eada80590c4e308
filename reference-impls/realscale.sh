#!/usr/bin/env bash
# Issue #20 point 5 on the GPU box: a 2.05B Gemma-shaped model, HF transformers bf16/fp16 traces of 512 tokens with
# every sub-layer probe, clean and with bf16-only bugs planted (all layers, layers 9-17 only, layers-only probes), then
# modeldiff's teacher-forced hunt on each. The tie rate is calibrated on input A (clean runs) and the hunts judge
# input B. (The 2026-12-06 run, docs/gpu-runs/realscale-2026-12-06.log, passed the rates after the main class,
# where the CLI refused them; fixed here.) Needs: a JRE at $JAVA, the modeldiff jar + libs at $CP. Output: $OUT/realscale.log, $OUT/realscale.json
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
W=/tmp/rs; mkdir -p $W/traces; OUT="${OUT:-/tmp}"; LOG="$OUT/realscale.log"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# JVM options (-D...) go before the main class: J_OPTS "$@" J_MAIN command ...
J_OPTS="$JAVA -Xmx110g --add-modules jdk.incubator.vector -cp $CP"; J_MAIN=modeldiff.cli.Main
J="$J_OPTS $J_MAIN"
log() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
log "$(nvidia-smi --query-gpu=name --format=csv,noheader)"
python3 "$HERE/make_realscale.py" $W/model 2>&1 | grep -v Warning | tee -a "$LOG"
A=$(python3 -c "import random;r=random.Random(1);print(','.join(str(r.randrange(3,32000)) for _ in range(512)))")
B=$(python3 -c "import random;r=random.Random(2);print(','.join(str(r.randrange(3,32000)) for _ in range(512)))")
T() { # name dtype tokens offset probes [plant args...]
  local name=$1 dt=$2 tok=$3 off=$4 pr=$5; shift 5
  local t0=$(date +%s.%N)
  python3 "$HERE/hf_trace.py" --model $W/model --dtype $dt --device cuda --tokens "$tok" --position-offset $off \
    --probes $pr "$@" --out $W/traces/$name.safetensors 2>&1 | grep -e wrote -e plant -e Error | tee -a "$LOG"
  log "hf $name: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
  touch $W/traces/$name.done
}
H() { # name [java -D...]   (waits for the HF trace, made in the background)
  local name=$1; shift
  while [ ! -f $W/traces/$name.done ]; do sleep 1; done
  local t0=$(date +%s.%N)
  $J_OPTS "$@" $J_MAIN hunt --model $W/model --target $W/traces/$name.safetensors --json $W/$name.hunt.json --force 2>&1 \
    | grep -v -e WARNING -e "^$" | tee -a "$LOG"
  log "hunt $name: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
}
# Calibration input A: clean bf16 and fp16 runs; the tie rate is the largest share of differing elements at any
# probe of lowp forced by them, times 2.
T calA-bf16 bfloat16 "$A" 0 all
T calA-fp16 float16 "$A" 0 all
for dt in bf16 fp16; do
  $J compare --model $W/model --reference lowp:$dt --candidate $W/traces/calA-$dt.safetensors --json $W/calA-$dt.json --force \
    2>&1 | grep -v WARNING | tee -a "$LOG"
done
RATES=$(python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
out = []
for dt, name in (("bf16", "bfloat16"), ("fp16", "float16")):
    j = json.load(open("%s/calA-%s.json" % (w, dt)))
    worst = 0.0
    for c in j["candidates"]:
        for p in c["probes"]:
            u = p.get("ulps")
            if u and u["elements"]:
                worst = max(worst, u["differing"] / u["elements"])
    out.append("-Dmodeldiff.tie_rate.%s=%.6g" % (name, max(2 * worst, 1e-4)))
    print("calibration %s: worst probe share differing %.6g" % (dt, worst), file=sys.stderr)
print(" ".join(out))
PY
)
log "calibrated: $RATES"
# Judged input B: HF traces made in the background (GPU) while the hunts run (CPU).
(
T B-clean-bf16 bfloat16 "$B" 0 all
T B-norm-bf16 bfloat16 "$B" 0 all --plant norm.cast_before_weight
T B-norm9-17-bf16 bfloat16 "$B" 0 all --plant norm.cast_before_weight --plant-layers 9-17
T B-norm-layers-bf16 bfloat16 "$B" 0 layers --plant norm.cast_before_weight
T B-invfreq-bf16 bfloat16 "$B" 0 all --plant rope.inv_freq_lowp
T B-angles4000-bf16 bfloat16 "$B" 4000 all --plant rope.bf16_angles
T B-embed-bf16 bfloat16 "$B" 0 all --plant embed.scale_fp32
T B-clean-fp16 float16 "$B" 0 all
T B-norm-fp16 float16 "$B" 0 all --plant norm.cast_before_weight
) &
for n in B-clean-bf16 B-norm-bf16 B-norm9-17-bf16 B-norm-layers-bf16 B-invfreq-bf16 B-angles4000-bf16 B-embed-bf16 B-clean-fp16 B-norm-fp16; do
  H $n $RATES
  rm -f $W/traces/$n.safetensors   # disk: each all-probe trace is ~1.2 GB
done
python3 - "$W" "$OUT/realscale.json" <<'PY'
import glob, json, os, sys
w, out = sys.argv[1], sys.argv[2]
res = {}
for f in sorted(glob.glob(w + "/*.hunt.json")):
    j = json.load(open(f))
    res[os.path.basename(f)[:-10]] = {k: j.get(k) for k in ("verdict", "best", "sentence", "runs", "seconds", "cost_in_forwards", "forward_seconds")}
json.dump(res, open(out, "w"), indent=1)
PY
log done
