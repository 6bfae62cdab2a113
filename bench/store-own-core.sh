#!/usr/bin/env bash
# The SQLite store's cost against --data none when the writer has a core other than the
# hub's (docs/benchmarks.md, "The writer on a core of its own"): one build, interleaved
# rounds of the rooms scenario (10,000 clients in 1,000 rooms, 1,000 senders) and the
# fan-out (500 clients, 50 senders) on a fresh server pinned to CPU 0, with the generator
# on CPU 1, all under nice -n -10: `none` (--data none), `dir` (a data directory, the
# writer thread on CPU 0 with the rest) and `own` (the writer thread, charla-history,
# moved to CPU 1 beside the generator once the server is up). Prints one line per rate,
# the generator's CPU share and send lag, and the writer's and the server's CPU ticks
# (10 ms). Run it under
# `flock /tmp/bench.lock`; about 2 minutes a round.
#
#   bench/store-own-core.sh BINARY [ROUNDS]
set -euo pipefail
BIN=$1; ROUNDS=${2:-3}
W=$(mktemp -d /tmp/charla-own.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
run() { # LABEL none|dir|own SCENARIO ARGS...
  local label=$1 kind=$2 scenario=$3 data=none; shift 3
  rm -rf "$W/d"; mkdir -p "$W/d"
  [ "$kind" != none ] && data=$W/d
  taskset -c 0 nice -n -10 "$BIN" serve --data "$data" --flood-rate 0 --max-per-ip 0 \
    --max-connections 19000 --listen 127.0.0.1:16621 > "$W/s.log" 2>&1 &
  local sp=$!
  sleep 1.5
  if [ "$kind" = own ]; then
    for t in /proc/"$sp"/task/*; do
      [ "$(cat "$t/comm")" = charla-history ] && taskset -p -c 1 "${t##*/}" > /dev/null
    done
  fi
  taskset -c 1 nice -n -10 "$BIN" bench run "$scenario" --addr 127.0.0.1:16621 --server-pid "$sp" \
    --duration 5 "$@" > "$W/b.out" 2>/dev/null || true
  grep '^| charla' "$W/b.out" |
    awk -F'|' -v l="$label" '{printf "%s %s rate=%s delivered=%s lost=%s p50=%s p99=%s send_lag=%s server_cpu=%s gen_cpu=%s\n", l, $3, $5, $6, $7, $10, $12, $16, $17, $20}'
  local writer=0 all=0
  for t in /proc/"$sp"/task/*; do
    ticks=$(awk '{print $14+$15}' "$t/stat")
    all=$((all + ticks))
    [ "$(cat "$t/comm")" = charla-history ] && writer=$((writer + ticks))
  done
  echo "$label ticks: writer $writer of $all"
  kill "$sp"; wait "$sp" 2>/dev/null || true
  sleep 0.5
}
R="--clients 10000 --rooms 1000 --senders 1000 --rates 500000,2000000"
F="--clients 500 --senders 50 --rates 500000,2000000"
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  run none none rooms $R
  run dir dir rooms $R
  run own own rooms $R
  run none none fanout $F
  run dir dir fanout $F
  run own own fanout $F
done
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
