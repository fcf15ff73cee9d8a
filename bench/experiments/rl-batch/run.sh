#!/bin/bash
# The default run under several configurations, for each seed, all side by side from the bundle (JVMs told they
# have 2 processors each), from the repository root:
#   CONFS="signal all" bash bench/experiments/rl-batch/run.sh SEED...
# A configuration NAME is bench/experiments/rl-batch/NAME.conf. The --json summaries and the logs' last lines go to
# $OUT (default ./out/rl-batch).
OUT=${OUT:-out/rl-batch}; mkdir -p "$OUT"
for seed in "$@"; do
  for m in ${CONFS:-signal all}; do
    ( JAVA_TOOL_OPTIONS=-XX:ActiveProcessorCount=2 timeout ${LIMIT:-560} out/bundle/bin/k2 run --json --seed $seed --backend java \
        --config bench/experiments/rl-batch/$m.conf --data-dir /tmp/rb-$m-$seed > $OUT/$m-$seed.json 2> /tmp/$m-$seed.err
      echo "exit $?" >> /tmp/$m-$seed.err; tail -c 400 /tmp/$m-$seed.err > $OUT/$m-$seed.log ) &
  done
done
wait
