#!/bin/bash
# The default run with QK-Clip on, off and adaptive, seeds 42 7 1, one after another on this machine (session 14's
# 2-core comparison), from the repository root: bash bench/experiments/rl-batch/clip-2core.sh
# The --json summaries go to bench/experiments/rl-batch/results/session14/2core-clip-MODE-SEED.json.
R=bench/experiments/rl-batch/results/session14
for spec in "on 42" "on 7" "on 1" "off 42" "off 7" "off 1" "adaptive 42" "adaptive 7" "adaptive 1"; do
  set -- $spec; mode=$1; seed=$2
  conf=""; [ $mode != on ] && conf="--config bench/experiments/rl-batch/r24-clip-$mode.conf"
  rm -rf /tmp/s14-$mode-$seed
  ./k2 run --json --seed $seed $conf --data-dir /tmp/s14-$mode-$seed > $R/2core-clip-$mode-$seed.json 2> /tmp/s14-$mode-$seed.err
  echo "$mode $seed exit $? $(date +%T)"
  rm -rf /tmp/s14-$mode-$seed
done
