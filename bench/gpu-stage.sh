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
du -sh "$DEST"
