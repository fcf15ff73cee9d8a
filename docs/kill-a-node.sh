#!/bin/bash
# What survives what, first rows of the README: three `k2 node` JVMs on a fresh PostgreSQL database, --run-agents 3000,
# kill -9 of one node once the driver's progress passes KILL_AT episodes; then the journal's count and duplicates.
# Usage: [PORT_BASE=2551] docs/kill-a-node.sh [KILL_AT] [VICTIM: 1 (the seed node) or 2]   (from the repository root; needs psql, jq)
set -u
KILL_AT=${1:-3654}; VICTIM=${2:-2}; A=${PORT_BASE:-2551}; B=$((A + 1)); C=$((A + 2))
DB=k2_kill_$$; OUT=$(mktemp -d); URL=jdbc:postgresql://127.0.0.1:5432/$DB
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $DB"
./k2 build
./k2 node --roles agent,tool --port $A --seeds 127.0.0.1:$A --jdbc-url $URL > $OUT/1.out 2> $OUT/1.err & P1=$!
./k2 node --roles agent,tool --port $B --seeds 127.0.0.1:$A --jdbc-url $URL > $OUT/2.out 2> $OUT/2.err & P2=$!
./k2 node --roles agent,tool --port $C --seeds 127.0.0.1:$A --jdbc-url $URL --run-agents 3000 --min-members 3 > $OUT/3.out 2> $OUT/3.err & P3=$!
n=0
for i in $(seq 1 2400); do   # at most 10 minutes
  n=$(grep -ao '[0-9,]*/15,000 episodes' $OUT/3.err | tail -1 | cut -d/ -f1 | tr -d ,)
  [ -n "$n" ] && [ "$n" -ge "$KILL_AT" ] && break
  kill -0 $P3 2>/dev/null || break
  sleep 0.25
done
if [ "$VICTIM" = 1 ]; then KILL=$P1; OTHER=$P2; else KILL=$P2; OTHER=$P1; fi
kill -9 $KILL; echo "kill -9 of node $VICTIM at $(date +%T.%N) after ${n:-0} episodes"
wait $P3; echo "driver exited $? at $(date +%T.%N)"
grep -a "removed from the cluster" $OUT/3.err | cut -c1-160
sed -n '/^k2 run/,/throughput/p' $OUT/3.out
kill $OTHER; wait $OTHER
echo "journal: $(./k2 replay --count --jdbc-url $URL 2>/dev/null) trajectories"
./k2 export --format jsonl --out $OUT/all.jsonl --jdbc-url $URL 2>/dev/null
echo "trajectory ids twice: $(jq -r .metadata.trajectory_id $OUT/all.jsonl | sort | uniq -d | wc -l)"
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $DB WITH (FORCE)"
echo "logs in $OUT"
