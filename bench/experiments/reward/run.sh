#!/bin/bash
# The open-task and Pareto benches side by side on one many-core host, from the bundle (./k2 bundle --out out/bundle),
# each stopped at LIMIT seconds so that what finished comes back: bash bench/experiments/reward/run.sh
# Output (the benches' text, one line per evaluation) goes to $OUT (default ./out/reward).
OUT=${OUT:-out/reward}; mkdir -p "$OUT"; LIMIT=${LIMIT:-560}
K2=out/bundle/bin/k2
OPEN="--sft-steps 600 --eval-tasks 50 --open-eval-tasks 60 --eval-trials 4 --rl-rounds 3 --rl-tasks 100 --rl-open-tasks 100"
for seed in ${SEEDS:-42 7}; do
  timeout $LIMIT $K2 bench open --seed $seed $OPEN --open-reward critic,none,oracle --parallel 3 > $OUT/open-$seed.txt 2>&1 &
done
timeout $LIMIT $K2 bench pareto --seed 42 --sft-steps 600 --open-episodes 0 --eval-tasks 100 --open-eval-tasks 0 --eval-trials 4 --rl-rounds 3 \
  --rl-tasks 150 --rl-open-tasks 0 --parallel 7 --out $OUT/pareto > $OUT/pareto.txt 2>&1 &
wait
