#!/usr/bin/env bash
# Regenerates everything in reports/: the demo's report and every notebook rendered with its output.
set -euo pipefail
cd "$(dirname "$0")/.."
./modeldiff demo --out reports --force
mkdir -p reports/notebooks
for nb in notebooks/*.jsh; do
  ./modeldiff notebook "$nb" --out "reports/notebooks/$(basename "$nb" .jsh).html" --force
done
