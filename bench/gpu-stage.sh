#!/usr/bin/env bash
# Stages what a GPU host without Java needs for the GPU benchmarks and the CUDA self-test into DEST
# (default .gpu): a jlinked JDK 25 runtime (java.base only), the cuda-ops, model and parameter-server jars,
# bench/torch_bench.py and bench/gpu-run.sh. About 45 MB. Run from the repository root after building:
#   ./mvnw -B -q -o -pl cuda-ops,model,parameter-server package -DskipTests && bench/gpu-stage.sh [DEST]
# then on the GPU host, from the folder that holds DEST:  bash DEST/gpu-run.sh DEST [parts]
set -euo pipefail
DEST=${1:-.gpu}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mkdir -p "$DEST/lib"
if [ ! -x "$DEST/jre/bin/java" ]; then
  "$JAVA_HOME/bin/jlink" --add-modules java.base --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$DEST/jre"
fi
rm -f "$DEST"/lib/*.jar
for m in cuda-ops model parameter-server; do
  cp "$m"/target/"$m"-*-SNAPSHOT.jar "$DEST/lib/$m.jar"
done
cp bench/torch_bench.py bench/gpu-run.sh "$DEST/"
# BASE=dir: also stage the jars of an earlier build in dir (a checkout built the same way) as DEST/base, for
# gpu-run.sh's before/after part "base"
if [ -n "${BASE:-}" ]; then
  mkdir -p "$DEST/base/lib"
  for m in cuda-ops model parameter-server; do
    cp "$BASE"/"$m"/target/"$m"-*-SNAPSHOT.jar "$DEST/base/lib/$m.jar"
  done
  echo "${BASE_COMMIT:-$BASE}" > "$DEST/base/COMMIT"
fi
du -sh "$DEST"
