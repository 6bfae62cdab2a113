#!/usr/bin/env bash
# The SQLite store's cost against --data none, for two builds, in interleaved rounds
# (docs/benchmarks.md, "The writer stages its commits"): the rooms scenario (10,000
# clients in 1,000 rooms, 1,000 senders) and the fan-out (500 clients, 50 senders), each
# run on a fresh server pinned to CPU 0 with the generator (NEW's) on CPU 1, both under
# nice -n -10. Prints one line per rate, and for runs with a data directory the CPU ticks
# (10 ms) the writer thread (charla-history) and the whole server spent. Run it under
# `flock /tmp/bench.lock`; about 2 minutes a round.
#
#   bench/store.sh NEW_BINARY OLD_BINARY [ROUNDS]
set -euo pipefail
NEW=$1; OLD=$2; ROUNDS=${3:-3}
W=$(mktemp -d /tmp/charla-store.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
run() { # LABEL BINARY none|dir SCENARIO ARGS...
  local label=$1 bin=$2 data=$3 kind=$3 scenario=$4; shift 4
  rm -rf "$W/d"; mkdir -p "$W/d"
  [ "$data" = dir ] && data=$W/d
  taskset -c 0 nice -n -10 "$bin" serve --data "$data" --flood-rate 0 --max-per-ip 0 \
    --max-connections 19000 --listen 127.0.0.1:16620 > "$W/s.log" 2>&1 &
  local sp=$!
  sleep 1.5
  taskset -c 1 nice -n -10 "$NEW" bench run "$scenario" --addr 127.0.0.1:16620 --server-pid "$sp" \
    --duration 5 "$@" 2>/dev/null | grep '^| charla' |
    awk -F'|' -v l="$label" '{printf "%s %s rate=%s delivered=%s lost=%s p50=%s p99=%s server_cpu=%s\n", l, $3, $5, $6, $7, $10, $12, $17}'
  local writer=0 all=0
  for t in /proc/"$sp"/task/*; do
    ticks=$(awk '{print $14+$15}' "$t/stat")
    all=$((all + ticks))
    [ "$(cat "$t/comm")" = charla-history ] && writer=$((writer + ticks))
  done
  [ "$kind" = dir ] && echo "$label ticks: writer $writer of $all"
  kill "$sp"; wait "$sp" 2>/dev/null || true
  sleep 0.5
}
R="--clients 10000 --rooms 1000 --senders 1000 --rates 500000,2000000"
F="--clients 500 --senders 50 --rates 500000,2000000"
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  run none "$NEW" none rooms $R
  run dir-old "$OLD" dir rooms $R
  run dir-new "$NEW" dir rooms $R
  run none "$NEW" none fanout $F
  run dir-old "$OLD" dir fanout $F
  run dir-new "$NEW" dir fanout $F
done
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
