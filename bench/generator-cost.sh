#!/usr/bin/env bash
# Where the load generator's own CPU goes (docs/benchmarks.md, "A cheaper generator,
# gen2"): a fresh server (SERVER, --data none) pinned to CPU 0, the generator (GEN) on
# CPU 1, both under nice -n -10, one rate per run; WAIT seconds after the start (past
# registration), for 4 s: each generator thread's user and system ticks a second (from
# /proc/PID/task/*/stat), the server's ticks a second, and the generator's reads, writes,
# epoll waits and sleeps a second (`perf stat` on syscall tracepoints). Then the run's
# report line. Run it under `flock /tmp/bench.lock`, interleaving two generators.
#
#   bench/generator-cost.sh SERVER GEN WAIT SCENARIO ARGS...
#   e.g. bench/generator-cost.sh ./charla ./charla 9 rooms --duration 14 --clients 10000 \
#          --rooms 1000 --senders 1000 --rates 500000
set -euo pipefail
SERVER=$1; GEN=$2; WAIT=$3; shift 3
W=$(mktemp -d /tmp/charla-gencost.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
taskset -c 0 nice -n -10 "$SERVER" serve --data none --flood-rate 0 --max-per-ip 0 \
  --max-connections 19000 --listen 127.0.0.1:16640 > "$W/s.log" 2>&1 &
sp=$!
sleep 1.5
taskset -c 1 nice -n -10 "$GEN" bench run "$@" --addr 127.0.0.1:16640 --server-pid "$sp" \
  > "$W/report" 2>/dev/null &
gp=$!
sleep "$WAIT"
threads() {
  for t in /proc/"$gp"/task/*; do
    echo "$(tr -d ' ' < "$t/comm") $(awk '{print $14, $15}' "$t/stat")"
  done | sort
}
threads > "$W/t1"
s0=$(awk '{print $14+$15}' /proc/"$sp"/stat)
perf stat -x, -p "$gp" -e 'syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendto' \
  -e 'syscalls:sys_enter_epoll_wait,syscalls:sys_enter_clock_nanosleep' -- sleep 4 2> "$W/perf"
threads > "$W/t2"
s1=$(awk '{print $14+$15}' /proc/"$sp"/stat)
join "$W/t1" "$W/t2" | awk '{printf "%s user/s %.0f sys/s %.0f; ", $1, ($4-$2)/4, ($5-$3)/4}'
echo "server ticks/s $(((s1 - s0) / 4))"
awk -F, '{printf "%s/s %d; ", $3, $1/4}' "$W/perf"; echo
wait "$gp"
kill "$sp"; wait "$sp" 2>/dev/null || true
grep '^| charla' "$W/report"
