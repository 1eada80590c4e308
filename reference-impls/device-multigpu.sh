#!/usr/bin/env bash
# Issue #18 on a real host of 2–8 GPUs (nvidia-h100-x2/x4/x8 or nvidia-h200-x2/...): NOT for the one-GPU box.
# Run from the repository root as `bash reference-impls/device-multigpu.sh` with $JAVA, $CP and $OUT set (reference-impls/device-next.sh does that).
# Devices: all the host's GPUs (override with MGPU_DEVICES=0,1). Outputs under $OUT/mgpu-multi/.
# 1. CudaSelfTest split on the fixtures over two real devices (-Dmodeldiff.cuda.devices=0,1: the forced splits then use
#    devices 0 and 1, peer access on where cuDeviceCanAccessPeer allows).
# 2. bench multigpu on the full Llama-3-70B shape (80 layers, 141 GB in bf16, generated on the devices: no synth folder,
#    nothing on disk): the planner's split over every GPU vs today's streaming on device 0. The streamed baseline needs
#    141 GB of page-locked host memory (fine on x4 / x8 hosts: 512+ GB; on x2 hosts, 256 GB, it may fail: that is
#    reported in the JSON, the split timing stands). Fits: 2 × H200 (≈ 125 GB budget each) or 4 × H100 (≈ 68 GB each).
# 3. The first 40 layers split evenly over every GPU, vs streamed (a second data point). Timeouts sum to < 600 s.
set -u
O=$OUT/mgpu-multi
mkdir -p "$O"
S=$(date +%s)
el() { echo $(( $(date +%s) - S )); }
J="$JAVA -Xmx48g --add-modules jdk.incubator.vector -cp $CP"
nvidia-smi -L | tee "$O/gpus.txt"
nvidia-smi topo -m >> "$O/gpus.txt" 2>&1
N=$(nvidia-smi -L | wc -l)
D=${MGPU_DEVICES:-$(seq -s, 0 $((N - 1)))}
echo "devices: $D"
timeout 100 $J -Dmodeldiff.cuda.devices=0,1 modeldiff.forward.cuda.CudaSelfTest split src/test/resources/fixtures > "$O/split.log" 2>&1
echo "== split over 0,1 rc=$? at +$(el)s"
grep -E "skipped|boundaries|differs|not split|FAIL|Exception|ALL OK|FAILURES|  at " "$O/split.log" | cut -c1-260 | head -60
timeout 320 $J modeldiff.cli.Main bench multigpu --shape llama3-70b --tokens 2048 --devices "$D" --split auto \
  --reps 3 --json "$O/bench-70b.json" > "$O/bench-70b.log" 2>&1
echo "== bench multigpu 80 layers rc=$? at +$(el)s"
grep -vE '^ *"|^[{}]|^WARNING' "$O/bench-70b.log" | cut -c1-220 | head -20
timeout $(( 590 - $(el) )) $J modeldiff.cli.Main bench multigpu --shape llama3-70b --layers 40 --tokens 2048 --devices "$D" --split even \
  --reps 3 --json "$O/bench-70b-40.json" > "$O/bench-70b-40.log" 2>&1
echo "== bench multigpu 40 layers, even rc=$? at +$(el)s"
grep -vE '^ *"|^[{}]|^WARNING' "$O/bench-70b-40.log" | cut -c1-220 | head -20
