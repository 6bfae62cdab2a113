# shellcheck shell=bash
# What bench/store.sh and bench/store-own-core.sh share: one run of a scenario on a fresh
# server pinned to CPU 0 (a fresh data directory, or --data none), the generator on CPU 1,
# both under nice -n -10. Set W (a scratch directory) and GEN (the generator's binary)
# first. Prints one line per rate (p99, the generator's send lag and CPU share), and for
# runs with a data directory the CPU ticks (10 ms) the writer thread (charla-history) and
# the whole server spent.
#
#   store_run LABEL BINARY none|dir|own|none-free|dir-free SCENARIO ARGS...
# with SCENARIO ARGS one of STORE_ROOMS and STORE_FANOUT.
# `own` is `dir` with the writer thread moved to CPU 1, beside the generator. The `-free`
# kinds let the server's threads (one runtime thread, `--threads 1`, and the writer) run on
# either CPU, where the kernel puts them, as on a machine nobody pinned anything on.
store_run() {
  local label=$1 bin=$2 kind=$3 scenario=$4 data=none cpus=0; shift 4
  rm -rf "$W/d"; mkdir -p "$W/d"
  case $kind in none|none-free) ;; *) data=$W/d ;; esac
  case $kind in *-free) cpus=0,1 ;; esac
  taskset -c "$cpus" nice -n -10 "$bin" serve --data "$data" --threads 1 --flood-rate 0 \
    --max-per-ip 0 --max-connections 19000 --listen 127.0.0.1:16620 > "$W/s.log" 2>&1 &
  local sp=$!
  sleep 1.5
  if [ "$kind" = own ]; then
    for t in /proc/"$sp"/task/*; do
      [ "$(cat "$t/comm")" = charla-history ] && taskset -p -c 1 "${t##*/}" > /dev/null
    done
  fi
  taskset -c 1 nice -n -10 "$GEN" bench run "$scenario" --addr 127.0.0.1:16620 --server-pid "$sp" \
    --duration 5 "$@" 2>/dev/null | grep '^| charla' |
    awk -F'|' -v l="$label" '{printf "%s %s rate=%s delivered=%s lost=%s p50=%s p99=%s send_lag=%s server_cpu=%s gen_cpu=%s\n", l, $3, $5, $6, $7, $10, $12, $16, $17, $20}'
  local writer=0 all=0 ticks
  for t in /proc/"$sp"/task/*; do
    ticks=$(awk '{print $14+$15}' "$t/stat")
    all=$((all + ticks))
    [ "$(cat "$t/comm")" = charla-history ] && writer=$((writer + ticks))
  done
  [ "$data" != none ] && echo "$label ticks: writer $writer of $all"
  kill "$sp"; wait "$sp" 2>/dev/null || true
  sleep 0.5
}

# The two scenarios, each at 500k and 2M deliveries a second.
STORE_ROOMS="rooms --clients 10000 --rooms 1000 --senders 1000 --rates 500000,2000000"
STORE_FANOUT="fanout --clients 500 --senders 50 --rates 500000,2000000"

# A scratch directory W removed on exit, as many open files as allowed, and the time and
# load printed (call at the start and the end).
store_setup() {
  W=$(mktemp -d /tmp/charla-store.XXXXXX)
  trap 'rm -rf "$W"' EXIT
  ulimit -n "$(ulimit -Hn)"
}
store_stamp() {
  echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
}
