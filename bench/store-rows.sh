#!/usr/bin/env bash
# The writer's CPU a stored row (docs/benchmarks.md, store6 to store8): the rooms scenario at
# 500k deliveries/s for 8 s on a fresh --data DIR, the server on CPU 0 and the generator on
# CPU 1 (both nice -n -10); the writer thread's (charla-history) ticks over the rows in the
# file. With PERF_OUT, PERF_SECONDS (3) of the writer are recorded there at PERF_HZ (1000)
# samples a second, from 3 s into the run. Run it under flock /tmp/bench.lock.
#
#   [PERF_HZ=4999 PERF_SECONDS=5] bench/store-rows.sh BINARY [PERF_OUT]
set -uo pipefail
BIN=$1; PERF=${2:-}
W=$(mktemp -d /tmp/charla-s6.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
mkdir -p $W/d
taskset -c 0 nice -n -10 "$BIN" serve --data "$W/d" --flood-rate 0 --max-per-ip 0 \
    --max-connections 19000 --listen 127.0.0.1:16623 > "$W/s.log" 2>&1 &
sp=$!
sleep 1.5
pp=; if [ -n "$PERF" ]; then (sleep 3; tid=$(grep -l charla-history /proc/$sp/task/*/comm | head -1 | cut -d/ -f5); perf record -F "${PERF_HZ:-1000}" -m 1024 --call-graph dwarf,16384 -t $tid -o $PERF -- sleep "${PERF_SECONDS:-3}" >/dev/null 2>&1) & pp=$!; fi
taskset -c 1 nice -n -10 "$BIN" bench run rooms --addr 127.0.0.1:16623 --server-pid "$sp" \
    --duration 8 --clients 10000 --rooms 1000 --senders 1000 --rates 500000 2>/dev/null | grep '^| charla' |
    awk -F'|' '{printf "rate=%s deliv=%s lost=%s p50=%s p99=%s cpu=%s\n", $5, $6, $7, $10, $12, $17}'
[ -n "$pp" ] && wait $pp
writer=0; all=0
for t in /proc/"$sp"/task/*; do
  ticks=$(awk '{print $14+$15}' "$t/stat"); all=$((all + ticks))
  [ "$(cat "$t/comm")" = charla-history ] && writer=$((writer + ticks))
done
kill "$sp"; wait "$sp" 2>/dev/null || true
rows=$(sqlite3 "$W/d/charla.db" "SELECT (SELECT count(*) FROM sqlite_master WHERE name='chunks')" )
if [ "$rows" = 1 ]; then rows=$(sqlite3 "$W/d/charla.db" "SELECT sum(count) FROM chunks"); else rows=$(sqlite3 "$W/d/charla.db" "SELECT count(*) FROM entries"); fi
sqlite3 "$W/d/charla.db" "SELECT count(*), avg(count), avg(length(data)), sum(length(data))/1000000 FROM chunks; PRAGMA page_count; PRAGMA freelist_count;" | tr "\n" " "; echo
echo "writer $writer of $all ticks, $rows rows: $(python3 -c "print(round($writer*10000/$rows,2))") us a row; file $(du -sh $W/d | cut -f1)"
