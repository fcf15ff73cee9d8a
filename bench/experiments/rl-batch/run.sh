#!/bin/bash
# The default run under several configurations, for each seed, all side by side from the bundle (JVMs told they
# have 2 processors each), from the repository root:
#   CONFS="signal all" bash bench/experiments/rl-batch/run.sh SEED...
# A configuration NAME is bench/experiments/rl-batch/NAME.conf. The --json summaries and the logs' last lines go to
# $OUT (default ./out/rl-batch). PROCS=4 gives each JVM four processors with what depends on the count pinned to
# the 2-core values (cores4.conf), so that runs of more rounds fit the device's 10-minute calls. ARCHIVE=F.tgz packs
# $OUT into one file and removes it (the device returns at most eight files a call).
OUT=${OUT:-out/rl-batch}; mkdir -p "$OUT"
for seed in "$@"; do
  for m in ${CONFS:-signal all}; do
    conf=bench/experiments/rl-batch/$m.conf
    if [ "${PROCS:-2}" != 2 ]; then cat $conf bench/experiments/rl-batch/cores4.conf > /tmp/$m-procs.conf; conf=/tmp/$m-procs.conf; fi
    ( JAVA_TOOL_OPTIONS=-XX:ActiveProcessorCount=${PROCS:-2} timeout ${LIMIT:-560} out/bundle/bin/k2 run --json --seed $seed --backend java \
        --config $conf --data-dir /tmp/rb-$m-$seed > $OUT/$m-$seed.json 2> /tmp/$m-$seed.err
      echo "exit $?" >> /tmp/$m-$seed.err; tail -c 400 /tmp/$m-$seed.err > $OUT/$m-$seed.log
      # REPLAY_OPEN=N: the last N lines of the run's rejected open rollouts (what RL made of the open tasks)
      if [ -n "${REPLAY_OPEN:-}" ]; then out/bundle/bin/k2 replay --data-dir /tmp/rb-$m-$seed --category open --rejected 2>&1 \
        | tail -n "$REPLAY_OPEN" > $OUT/$m-$seed.open-rejected.txt; fi ) &
  done
done
wait
if [ -n "${ARCHIVE:-}" ]; then tar czf "$ARCHIVE" -C "$OUT" . && rm -rf "$OUT"; fi
