#!/bin/bash
# Judges per node against cores: `k2 bench sim` with k2.judge.count = auto (the processors), half of them, or one,
# on 2 and 16 cores of one host, one run after another (taskset -c), from the repository root:
#   bash bench/experiments/cores/judges.sh; each run's JSON on stdout and in $OUT (default out/cores).
OUT=${OUT:-out/cores}; mkdir -p "$OUT"
sim() { local name=$1 cpus=$2 judges=$3
  echo "k2.judge.count = $judges" > /tmp/judges-$name.conf
  timeout 150 taskset -c "$cpus" out/bundle/bin/k2 bench sim --agents 10000 --episodes 60 --json --config /tmp/judges-$name.conf \
    > "$OUT/sim-$name.json" 2> "$OUT/sim-$name.err"
  echo "$name $(head -c 700 "$OUT/sim-$name.json")"; grep -v '^$' "$OUT/sim-$name.err" | tail -2; }
sim 2-auto 0,1 auto
sim 2-one 0,1 1
sim 16-auto 0-15 auto
sim 16-half 0-15 8
sim 2-auto-again 0,1 auto
sim 16-auto-again 0-15 auto
