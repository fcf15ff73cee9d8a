#!/bin/bash
# Where `k2 bench sim` stops scaling: the same run on 2 and on 16 cores of one host (taskset -c), each under JFR
# (settings=profile), from the repository root with a bundle whose JRE has jdk.jfr (the product bundle leaves it out:
# jlink the bundle's modules plus jdk.jfr into out/bundle/jre). The views that say where the time and the waits go
# are printed on the host itself (jfr view), so only text and the JSON come back:
#   OUT=... bash bench/experiments/cores/profile.sh
OUT=${OUT:-out/cores}; mkdir -p "$OUT"
prof() { local name=$1 cpus=$2
  JAVA_TOOL_OPTIONS="-XX:StartFlightRecording=filename=/tmp/sim-$name.jfr,settings=profile" timeout 200 taskset -c "$cpus" \
    out/bundle/bin/k2 bench sim --agents 10000 --episodes 60 --json > "$OUT/sim-$name.json" 2> /tmp/sim-$name.err
  echo "$name exit $? $(head -c 400 "$OUT/sim-$name.json")"
  for v in thread-cpu-load hot-methods cpu-time-hot-methods contention-by-site contention-by-class allocation-by-site \
      gc-pauses gc-cpu-time safepoints latencies-by-type cpu-load; do
    echo "=== $v"; out/bundle/jre/bin/jfr view --width 220 $v /tmp/sim-$name.jfr 2>&1 | head -n 45
  done > "$OUT/prof-$name.txt"
  out/bundle/jre/bin/jfr print --events jdk.ThreadPark --stack-depth 6 /tmp/sim-$name.jfr 2>/dev/null | grep -A7 "jdk.ThreadPark" \
    | grep -E "line:" | sort | uniq -c | sort -rn | head -n 40 > "$OUT/park-$name.txt"
}
prof 2 0,1
prof 16 0-15
