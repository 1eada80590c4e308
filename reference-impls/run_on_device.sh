#!/usr/bin/env bash
# The one command run on the GPU box (see /work/shared/device/README.md): builds every fixture
# and its HF reference traces, smoke-tests the hf_trace.py CLI, and puts the results under $OUT
# as fixtures.tgz + make_fixtures.log (the device tool brings back at most 8 files).
#
# Usage (on the box, from the repository root):  bash reference-impls/run_on_device.sh [--only a,b]
# Extra arguments are passed to make_fixtures.py.
set -u -o pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-/tmp/modeldiff-out}"
WORK="$(mktemp -d /tmp/modeldiff-fixtures.XXXX)"
mkdir -p "$OUT"
# The box has no network: make sure nothing tries the Hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
LOG="$OUT/make_fixtures.log"
{
  echo "== host: $(hostname) $(date -u +%FT%TZ)"
  nvidia-smi -L 2>&1 || true
  python3 -c 'import sys, torch, transformers, safetensors, numpy; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "safetensors", safetensors.__version__, "numpy", numpy.__version__)'
} 2>&1 | tee "$LOG"

python3 "$HERE/make_fixtures.py" --out "$WORK/fixtures" "$@" 2>&1 | tee -a "$LOG"

# CLI smoke test (what a person would run by hand); not part of the fixtures.
if [ -d "$WORK/fixtures/llama/model" ]; then
  echo "== CLI smoke test" | tee -a "$LOG"
  python3 "$HERE/hf_trace.py" --model "$WORK/fixtures/llama/model" --dtype float32 --device cpu \
    --tokens 1,17,42,99 --position-offset 5 --probes layers --check-hooks --plant perturb.layer1 \
    --out "$WORK/cli.safetensors" 2>&1 | tee -a "$LOG"
  python3 - "$WORK/cli.safetensors" <<'PY' 2>&1 | tee -a "$LOG"
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
print("metadata:", json.dumps(h.get("__metadata__"), sort_keys=True))
print("tensors:", {k: (v["dtype"], v["shape"]) for k, v in h.items() if k != "__metadata__"})
PY
fi

tar czf "$OUT/fixtures.tgz" -C "$WORK" fixtures
ls -l "$OUT" | tee -a "$LOG"
du -sh "$WORK/fixtures" | tee -a "$LOG"
