#!/bin/bash
# `k2 bench sim` on 2, 8 and 16 cores of one host, from the bundle, one after another (taskset -c), from the
# repository root: bash bench/experiments/cores/run.sh; outputs in $OUT (default out/cores), one JSON per run.
# Then 16 cores again with one judge per node (k2.judge.count = 1) and with the backpressure limit lifted, for the
# A/B in the same call.
OUT=${OUT:-out/cores}; mkdir -p "$OUT"
sim() { local name=$1 cpus=$2; shift 2
  timeout 150 taskset -c "$cpus" out/bundle/bin/k2 bench sim --agents 10000 --episodes 60 --json "$@" > "$OUT/sim-$name.json" 2> "$OUT/sim-$name.err"
  head -c 600 "$OUT/sim-$name.json"; echo; }
echo 'k2.judge.count = 1' > /tmp/judge1.conf
echo 'k2.judge.max-backlog = 100000000' > /tmp/nolimit.conf
sim 2 0,1
sim 8 0-7
sim 16 0-15
sim 16-judge1 0-15 --config /tmp/judge1.conf
sim 16-nolimit 0-15 --config /tmp/nolimit.conf
sim 2-again 0,1
