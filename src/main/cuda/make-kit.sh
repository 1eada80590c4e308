#!/usr/bin/env bash
# What a run on the GPU box needs besides the checkout (docs/cuda.md, "Running on the GPU box"), written to KIT:
# a thin jar of target/classes (PTX included, modeldiff/demo left out), the few dependency jars the CUDA passes and
# the self-test load (jcuda's natives without the 24 MB NVPTX compiler library, which modeldiff never loads), and
# device-run.sh. Run after `mvn package` (nvcc on the PATH); add the JRE with ../shared/device/make-jre.sh KIT.
# Usage: src/main/cuda/make-kit.sh KIT
set -euo pipefail
kit=${1:?usage: make-kit.sh KIT}
root=$(cd "$(dirname "$0")/../../.." && pwd)
[ -f "$root/target/classes/cuda/modeldiff_kernels.ptx" ] || { echo "no PTX in target/classes: run mvn package with nvcc" >&2; exit 2; }
mkdir -p "$kit/lib"
kit=$(cd "$kit" && pwd)
(cd "$root/target/classes" && jar cf "$kit/modeldiff.jar" cuda $(find modeldiff -maxdepth 1 -mindepth 1 -not -name demo))
for j in jcuda-12.0.0 commons-math3-3.6.1 jackson-annotations jackson-core jackson-databind slf4j-api; do
  cp "$root"/target/lib/$j*.jar "$kit/lib/"
done
tmp=$(mktemp -d)
(cd "$tmp" && unzip -q "$root"/target/lib/jcuda-natives-12.0.0-linux-x86_64.jar -x 'lib/libJNvPTXCompiler*' \
  && jar cf "$kit/lib/jcuda-natives-12.0.0-linux-x86_64.jar" lib META-INF/maven)
rm -rf "$tmp"
cp "$root/src/main/cuda/device-run.sh" "$kit/"
du -sh "$kit"
