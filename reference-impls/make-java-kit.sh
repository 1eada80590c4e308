#!/usr/bin/env bash
# A Java kit small enough to travel to the GPU box beside the checkout (64 MiB may travel in all; the tracked files
# were 49 MiB when this kit ran on 2026-12-06 and are 53.7 MiB since): a jlink'd JRE (java.base, java.logging,
# jdk.unsupported and the Vector API only; libjvm.so stripped) and one folder of classes (modeldiff without its demo
# assets, plus the classes of the dependency jars that the hunt, trace and CUDA self-test load: jfreechart only for the
# 13 classes picocli's command tree touches, DJL only for its NDArray types, commons-math3 only for its special
# functions), each as tar.xz: 10.2 MB + 2.5 MB (12.2 MiB with du) on 2026-12-06.
# Usage, after `mvn package`:  reference-impls/make-java-kit.sh KIT     (KIT must be git-ignored)
# On the box:  tar xJf KIT/jre.txz -C /tmp; mkdir -p /tmp/cp; tar xJf KIT/cp.txz -C /tmp/cp
#              /tmp/jre/bin/java --add-modules jdk.incubator.vector -cp /tmp/cp modeldiff.cli.Main ...
set -euo pipefail
kit=${1:?usage: make-java-kit.sh KIT}
root=$(cd "$(dirname "$0")/.." && pwd)
jdk=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
mkdir -p "$kit"; kit=$(cd "$kit" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$jdk/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-man-pages --no-header-files --compress=0 --output "$tmp/jre" 2>&1 | grep -v incubator || true
strip --strip-unneeded "$tmp/jre/lib/server/libjvm.so"
tar cJf "$kit/jre.txz" -C "$tmp" jre
mkdir "$tmp/c"
cd "$tmp/c"
unzip -qo "$root/target/modeldiff.jar" -x 'modeldiff/demo/*'
for j in picocli jackson-annotations jackson-core jackson-databind slf4j-api jcuda-12; do
  unzip -qo "$(ls "$root"/target/lib/$j*.jar | head -1)" -x 'META-INF/*'
done
# commons-math3: only its special functions (Erf, Gamma), FastMath and their exceptions are used.
unzip -qo "$(ls "$root"/target/lib/commons-math3-*.jar | head -1)" 'org/apache/commons/math3/exception/*' \
  'org/apache/commons/math3/special/*' 'org/apache/commons/math3/util/*'
unzip -qo "$root"/target/lib/jcuda-natives-12.0.0-linux-x86_64.jar -x 'lib/libJNvPTXCompiler*' 'META-INF/*'
# DJL: the cuda pass asks TorchPass which models it refuses, and loading TorchPass needs the NDArray types.
unzip -qo "$(ls "$root"/target/lib/api-0.36.0.jar)" 'ai/djl/ndarray/*.class' 'ai/djl/ndarray/types/*'
# jfreechart: the classes that loading the CLI's command tree needs (java -verbose:class on a hunt); no chart is drawn.
unzip -qo "$(ls "$root"/target/lib/jfreechart-*.jar | head -1)" \
  org/jfree/chart/JFreeChart.class org/jfree/chart/LegendItemSource.class org/jfree/chart/axis/Axis.class \
  org/jfree/chart/axis/NumberAxis.class org/jfree/chart/axis/ValueAxis.class \
  org/jfree/chart/event/PlotChangeListener.class org/jfree/chart/event/TitleChangeListener.class \
  org/jfree/chart/renderer/xy/XYItemRenderer.class org/jfree/chart/ui/Drawable.class \
  org/jfree/chart/util/PublicCloneable.class org/jfree/data/general/Dataset.class \
  org/jfree/data/general/SeriesDataset.class org/jfree/data/xy/XYDataset.class
tar cJf "$kit/cp.txz" -C "$tmp/c" .
ls -la "$kit"
