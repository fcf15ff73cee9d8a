#!/bin/bash
# The default run with QK-Clip on, off and adaptive, for each seed given, all side by side from the bundle
# (JVMs told they have 2 processors each), from the repository root: bash bench/experiments/clip-modes/run.sh SEED...
# The --json summaries and the logs' last lines go to $OUT (default ./out/clip-modes).
OUT=${OUT:-out/clip-modes}; mkdir -p "$OUT"
for seed in "$@"; do
  for m in on off adaptive; do
    ( JAVA_TOOL_OPTIONS=-XX:ActiveProcessorCount=2 timeout ${LIMIT:-540} out/bundle/bin/k2 run --json --seed $seed --backend java \
        --config bench/experiments/clip-modes/$m.conf --data-dir /tmp/c-$m-$seed > $OUT/$m-$seed.json 2> /tmp/$m-$seed.err
      echo "exit $?" >> /tmp/$m-$seed.err; tail -c 400 /tmp/$m-$seed.err > $OUT/$m-$seed.log ) &
  done
done
wait
