#!/bin/bash
# Runs each config on 4 cores of its own, side by side, from the repository root: bash bench/experiments/rl-objective/run.sh SEED CFG...
# Results (the --json summary and the log's last lines) go to $OUT (default ./out/rl-objective).
OUT=${OUT:-out/rl-objective}; mkdir -p "$OUT"
seed=$1; shift; i=0
for c in "$@"; do
  ( taskset -c $((i*4))-$((i*4+3)) out/bundle/bin/k2 run --json --seed $seed --backend java --config bench/experiments/rl-objective/$c.conf --data-dir /tmp/d-$c-$seed > $OUT/$c-$seed.json 2> /tmp/$c-$seed.err; grep -v '\[#\|\[\.' /tmp/$c-$seed.err | tail -40 > $OUT/$c-$seed.log; tail -c 300 /tmp/$c-$seed.err >> $OUT/$c-$seed.log ) &
  i=$((i+1))
done
wait
