#!/usr/bin/env bash
# Stages what a GPU host without Java needs for the GPU benchmarks and the CUDA self-test into DEST
# (default .gpu): a jlinked JDK 25 runtime (java.base only), the cuda-ops, model, optim and bench jars,
# bench/torch_bench.py and bench/gpu-run.sh. About 45 MB. Run from the repository root after building:
#   ./mvnw -B -q -o -pl cuda-ops,model,optim,bench -am package -DskipTests && bench/gpu-stage.sh [DEST]
# then on the GPU host, from the folder that holds DEST:  bash DEST/gpu-run.sh DEST [parts]
set -euo pipefail
DEST=${1:-.gpu}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mkdir -p "$DEST/lib"
if [ ! -x "$DEST/jre/bin/java" ]; then
  "$JAVA_HOME/bin/jlink" --add-modules java.base --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$DEST/jre"
fi
rm -f "$DEST"/lib/*.jar
for m in cuda-ops model optim bench; do
  cp "$m"/target/"$m"-*-SNAPSHOT.jar "$DEST/lib/$m.jar"
done
cp bench/torch_bench.py bench/gpu-run.sh "$DEST/"
# BASE=dir: also stage the jars of an earlier build in dir (a checkout built the same way) as DEST/base, for
# gpu-run.sh's before/after part "base"; a build from before module optim and bench existed has GpuBench in
# parameter-server's jar (dev.k2pekko.ps.optim.bench.GpuBench): DEST/base/MAIN names the class to run
if [ -n "${BASE:-}" ]; then
  mkdir -p "$DEST/base/lib"
  rm -f "$DEST"/base/lib/*.jar
  for m in cuda-ops model optim bench parameter-server; do
    for j in "$BASE"/"$m"/target/"$m"-*-SNAPSHOT.jar; do if [ -f "$j" ]; then cp "$j" "$DEST/base/lib/$m.jar"; fi; done
  done
  if [ -f "$DEST/base/lib/bench.jar" ]; then echo dev.k2pekko.bench.GpuBench; else echo dev.k2pekko.ps.optim.bench.GpuBench; fi > "$DEST/base/MAIN"
  echo "${BASE_COMMIT:-$BASE}" > "$DEST/base/COMMIT"
fi
du -sh "$DEST"
