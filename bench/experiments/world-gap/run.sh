#!/bin/bash
# Offline world probes (k2 bench sft-plateau) side by side, CORES (4) cores each, from the repository root:
#   bash bench/experiments/world-gap/run.sh NAME "ARGS..." NAME "ARGS..." ...
# Each probe's progress lines go to $OUT/NAME.txt as they come (so a probe cut short by a time limit still reports).
OUT=${OUT:-out/world-gap}; mkdir -p "$OUT"; C=${CORES:-4}
i=0
while [ $# -ge 2 ]; do
  name=$1; args=$2; shift 2
  ( echo "args: $args" > "$OUT/$name.txt"
    taskset -c $((i*C))-$((i*C+C-1)) timeout ${LIMIT:-550} out/bundle/bin/k2 bench sft-plateau $args >> "$OUT/$name.txt" 2> "/tmp/$name.err"
    echo "exit $?" >> "$OUT/$name.txt"; tail -5 "/tmp/$name.err" >> "$OUT/$name.txt" ) &
  i=$((i+1))
done
wait
