#!/bin/bash
# What survives what, the partition row of the README: three `k2 node` JVMs with the default settings, each in a
# network namespace of its own (veth links to a bridge in a fourth namespace, addresses 10.213.0.1-3 that exist only
# there), on a fresh PostgreSQL database that each namespace reaches through the server's unix socket (socat). Once the
# driver's progress passes CUT_AT episodes, nftables rules inside the namespaces drop every packet between node 1 (the
# seed, the oldest member) and the other two, both ways. Prints when the driver saw node 1 Down and Removed, when node 1
# exited and with which code, the summary, and the journal's check. Deletes the namespaces (and with them every link
# and rule) and the database at the end, also when interrupted.
# Usage, as root from the repository root: docs/partition-a-node.sh [CUT_AT]   (needs ip, nft, socat, psql, jq)
set -u
CUT_AT=${1:-3000}
P=k2s$$; DB=k2_part_$$; OUT=$(mktemp -d); URL=jdbc:postgresql://127.0.0.1:5432/$DB
SOCK=$(psql -qtA -h 127.0.0.1 -U postgres -d test -c "SHOW unix_socket_directories" | cut -d, -f1)/.s.PGSQL.$(psql -qtA -h 127.0.0.1 -U postgres -d test -c "SHOW port")
cleanup() {
  kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
  for n in 1 2 3 hub; do ip netns del $P-$n 2>/dev/null; done
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
}
trap cleanup EXIT
./k2 --version > /dev/null || exit 1   # builds once, here, if the sources are newer than the jar
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $DB" || exit 1
ip netns add $P-hub && ip -n $P-hub link add br0 type bridge && ip -n $P-hub link set br0 up || exit 1
for n in 1 2 3; do
  ip netns add $P-$n
  ip link add $P-$n netns $P-hub type veth peer name eth0 netns $P-$n
  ip -n $P-hub link set $P-$n master br0; ip -n $P-hub link set $P-$n up
  ip -n $P-$n addr add 10.213.0.$n/24 dev eth0; ip -n $P-$n link set eth0 up; ip -n $P-$n link set lo up
  ip netns exec $P-$n socat TCP-LISTEN:5432,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:$SOCK &
done
node() { local n=$1; shift; ip netns exec $P-$n ./k2 node --roles agent,tool --host 10.213.0.$n --port 2551 --seeds 10.213.0.1:2551 --jdbc-url $URL "$@"; }
node 1 > $OUT/1.out 2> $OUT/1.err & P1=$!
node 2 > $OUT/2.out 2> $OUT/2.err & P2=$!
node 3 --run-agents 3000 --min-members 3 > $OUT/3.out 2> $OUT/3.err & P3=$!
n=0
for i in $(seq 1 2400); do   # at most 10 minutes
  n=$(grep -ao '[0-9,]*/15,000 episodes' $OUT/3.err | tail -1 | cut -d/ -f1 | tr -d ,)
  [ -n "$n" ] && [ "$n" -ge "$CUT_AT" ] && break
  kill -0 $P3 2>/dev/null || break
  sleep 0.25
done
for n2 in 1 2 3; do
  if [ $n2 = 1 ]; then other="10.213.0.2, 10.213.0.3"; else other="10.213.0.1"; fi
  ip netns exec $P-$n2 nft -f - <<EOF
table inet k2partition {
  chain input { type filter hook input priority 0; policy accept; ip saddr { $other } drop; }
  chain output { type filter hook output priority 0; policy accept; ip daddr { $other } drop; }
}
EOF
done
cut=$(date +%s.%N); echo "node 1 cut off at $(date +%T) after ${n:-0} episodes"
since() { awk "BEGIN { printf \"%.1f s\", $(date +%s.%N) - $cut }"; }
down=; removed=; exited=
for i in $(seq 1 2400); do   # at most 10 minutes
  [ -z "$down" ] && grep -q "^member pekko://k2@10.213.0.1:2551 Down" $OUT/3.out && down=$(since) && echo "driver saw node 1 Down after $down"
  [ -z "$removed" ] && grep -q "^member pekko://k2@10.213.0.1:2551 Removed" $OUT/3.out && removed=$(since) && echo "driver saw node 1 Removed after $removed"
  [ -z "$exited" ] && ! kill -0 $P1 2>/dev/null && exited=$(since) && { wait $P1; echo "node 1 exited after $exited, code $?"; }
  kill -0 $P3 2>/dev/null || break
  sleep 0.25
done
wait $P3; echo "driver exited $? after $(since)"
grep -a "^k2 node:" $OUT/1.err | cut -c1-200
grep -a "removed from the cluster" $OUT/3.err | cut -c1-200
sed -n '/^k2 run/,/throughput/p' $OUT/3.out
./k2 journal check --jdbc-url $URL 2>/dev/null | head -5
./k2 export --format jsonl --out $OUT/all.jsonl --jdbc-url $URL 2>/dev/null
echo "journal: $(wc -l < $OUT/all.jsonl) trajectories, $(jq -r .metadata.trajectory_id $OUT/all.jsonl | sort | uniq -d | wc -l) ids twice"
kill $P2; wait $P2
echo "logs in $OUT"
