#!/usr/bin/env bash
# Where the store costs CPU on the server's core (docs/benchmarks.md, store8): the rooms
# scenario (10,000 clients in 1,000 rooms, 1,000 senders) at RATE deliveries/s for 8 s
# against a fresh server pinned to CPU 0 (the generator on CPU 1, both under nice -n -10),
# with DATA `none` or `dir` (a fresh data directory); `perf record` samples the whole server
# for 4 s in the middle of the run into OUT (perf report -i OUT --sort comm,dso,sym). Prints
# the generator's line and the server's CPU ticks by thread. Run it under
# `flock /tmp/bench.lock`.
#
#   bench/store-perf.sh BINARY none|dir RATE OUT [PERF_RECORD_ARGS...]
set -uo pipefail
BIN=$1; DATA=$2; RATE=$3; OUT=$4; shift 4
EXTRA=("$@"); [ ${#EXTRA[@]} -eq 0 ] && EXTRA=(-F 1999 -g)
W=$(mktemp -d /tmp/charla-sperf.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
mkdir -p "$W/d"; d=none; [ "$DATA" = dir ] && d=$W/d
taskset -c 0 nice -n -10 "$BIN" serve --data "$d" --flood-rate 0 --max-per-ip 0 \
  --max-connections 19000 --listen 127.0.0.1:16624 > "$W/s.log" 2>&1 &
sp=$!
sleep 1.5
( sleep 3.5; taskset -c 1 perf record "${EXTRA[@]}" -p "$sp" -o "$OUT" -- sleep 4 >/dev/null 2>&1 ) & pp=$!
taskset -c 1 nice -n -10 "$BIN" bench run rooms --addr 127.0.0.1:16624 --server-pid "$sp" \
  --duration 8 --clients 10000 --rooms 1000 --senders 1000 --rates "$RATE" 2>/dev/null | grep '^| charla' |
  awk -F'|' '{printf "rate=%s deliv=%s lost=%s p50=%s p99=%s cpu=%s\n", $5, $6, $7, $10, $12, $17}'
wait $pp
for t in /proc/"$sp"/task/*; do
  printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14+$15}' "$t/stat")"
done | awk '{a[$1]+=$2; s+=$2} END {for (k in a) printf "%s=%d ", k, a[k]; printf "all=%d ticks\n", s}'
kill "$sp"; wait "$sp" 2>/dev/null || true
