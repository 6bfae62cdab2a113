#!/usr/bin/env bash
# charla's cluster against one charla node and against Socket.IO's own cluster (issue 20), in
# one run, the same clients in one room (docs/benchmarks.md "Cluster against one node and
# against Socket.IO's Redis adapter"):
#
#   charla1   one charla node alone
#   charla3   three charla nodes on one Redis (`--cluster`)
#   charla2   two charla nodes on one Redis
#   sio2      two Socket.IO 4.8.1 nodes on one Redis through @socket.io/redis-adapter
#   sio1      one Socket.IO node alone (not in the default ORDER)
#
# For each, fresh servers, then: a fixed-rate run (RATES, Socket.IO SIO_RATES) for p50/p99
# and the Redis commands per message it caused (`INFO commandstats` after `CONFIG
# RESETSTAT`); a fixed run of SMALL_CLIENTS clients at the same messages per second, to see
# whether those commands grow with the room; then `--saturate` from SAT_FROM (Socket.IO
# SIO_SAT_FROM): the highest rate held with nothing lost and p99 <= P99_LIMIT ms, each rate
# 1.5 times the last. Servers and Redis run on CPU 0, the generator on CPU 1; clients are
# spread over the nodes in turn (`--also`). Writes bench/results/cluster-peers-*.json and
# prints a table. Takes about 4 minutes; run it alone on the machine:
#
#   flock /tmp/bench.lock nice -n -10 bench/cluster-peers.sh target/release/charla
#   ORDER="sio2 charla3" TAG=r2 bench/cluster-peers.sh target/release/charla
set -euo pipefail
BIN=$(realpath "$1")
cd "$(dirname "$0")/.."
ORDER=${ORDER:-"charla1 charla3 charla2 sio2"}
TAG=${TAG:-r1}
CLIENTS=${CLIENTS:-500}
SENDERS=${SENDERS:-50}
SMALL_CLIENTS=${SMALL_CLIENTS:-100}
RATES=${RATES:-"20000,500000"}
SIO_RATES=${SIO_RATES:-20000}
DURATION=${DURATION:-5}
SAT_FROM=${SAT_FROM:-100000}
SIO_SAT_FROM=${SIO_SAT_FROM:-5000}
SAT_DURATION=${SAT_DURATION:-2}
P99_LIMIT=${P99_LIMIT:-200}
export CLIENTS SMALL_CLIENTS
OUT=bench/results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/charla-cluster-peers.XXXXXX)
. bench/cluster-lib.sh
need node nodejs
need npm npm
[ -d bench/socketio/node_modules/@socket.io/redis-adapter ] \
  || (cd bench/socketio && npm ci --no-audit --no-fund --silent)

# Runs the generator at the servers started (SERVERS: their pids, Redis last; ADDRS), as run
# NAME with the arguments given; writes $OUT/cluster-peers-$TAG-NAME.json and, beside it in
# WORK, the servers' CPU ticks and the milliseconds it took and Redis's command counts.
load() {
  local name=$1; shift
  local also=() a
  for a in "${ADDRS[@]:1}"; do also+=(--also "$a"); done
  [ -n "${RPORT:-}" ] && redis-cli -p "$RPORT" config resetstat >/dev/null
  local before start
  before=$(ticks $SERVERS)
  start=$(date +%s%N)
  echo "== $TAG $name: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  taskset -c 1 "$BIN" bench run fanout --protocol "$PROTOCOL" --addr "${ADDRS[0]}" "${also[@]}" \
    --server-pid "${SERVERS%% *}" --senders "$SENDERS" --label "$name" \
    --json "$OUT/cluster-peers-$TAG-$name.json" "$@" || echo "   ($name failed; see above)"
  echo "$(($(ticks $SERVERS) - before)) $((($(date +%s%N) - start) / 1000000))" >"$WORK/$name.cpu"
  if [ -n "${RPORT:-}" ]; then
    redis-cli -p "$RPORT" info commandstats >"$WORK/$name.redis"
  else
    : >"$WORK/$name.redis"
  fi
}

# Starts configuration CONF's servers: sets SERVERS, ADDRS, PROTOCOL and RPORT.
start() {
  local conf=$1 nodes kind
  kind=${conf%%[0-9]*}
  nodes=${conf#"$kind"}
  SERVERS=""; ADDRS=(); RPORT=""; RPID=""
  [ "$nodes" -gt 1 ] && redis
  local url=${RPORT:+redis://127.0.0.1:$RPORT}
  for _ in $(seq "$nodes"); do
    if [ "$kind" = sio ]; then
      PROTOCOL=socket-io
      sio_node "$url"
    else
      PROTOCOL=charla
      node ${url:+--cluster "$url"}
    fi
    ADDRS+=("$ADDR"); SERVERS="${SERVERS:+$SERVERS }$PID"
  done
  [ -n "$RPID" ] && SERVERS="$SERVERS $RPID"
  # Let the nodes finish subscribing before clients arrive.
  sleep 1
}

for conf in $ORDER; do
  if [ "${conf#sio}" != "$conf" ]; then rates=$SIO_RATES; from=$SIO_SAT_FROM; else rates=$RATES; from=$SAT_FROM; fi
  # The small room hears as many messages a second as the large one at its last fixed rate.
  last=${rates##*,}
  small=$((last * (SMALL_CLIENTS - 1) / (CLIENTS - 1)))
  start "$conf"
  load "$conf-fixed" --clients "$CLIENTS" --rates "$rates" --duration "$DURATION"
  load "$conf-small" --clients "$SMALL_CLIENTS" --rates "$small" --duration "$DURATION"
  cleanup
  start "$conf"
  load "$conf-saturate" --clients "$CLIENTS" --rates "$from" --duration "$SAT_DURATION" \
    --saturate --p99-limit-ms "$P99_LIMIT"
  cleanup
done

python3 - "$OUT" "$TAG" "$WORK" "$(getconf CLK_TCK)" "$P99_LIMIT" $ORDER <<'PY' | tee "$OUT/cluster-peers-$TAG.md"
import json, os, re, sys
out, tag, work, hz, limit, confs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6:]
large, small = int(os.environ["CLIENTS"]), int(os.environ["SMALL_CLIENTS"])

def report(name):
    path = f"{out}/cluster-peers-{tag}-{name}.json"
    return json.load(open(path)) if os.path.exists(path) else None

def redis_calls(name):
    """Commands Redis ran during the run, but redis-cli's own."""
    calls = {}
    for line in open(f"{work}/{name}.redis"):
        m = re.match(r"cmdstat_(\w+(?:\|\w+)?):calls=(\d+)", line)
        if m and m.group(1).split("|")[0] not in ("config", "info", "ping"):
            calls[m.group(1)] = int(m.group(2))
    return calls

# What src/cluster/link.rs's message script (SAID) runs for each message besides itself:
# INCR, RPUSH, LTRIM, PEXPIRE, PUBLISH (Redis counts them as well as the EVALSHA). Builds
# before the backlogs' expiry (CLUSTER_BACKLOG_TTL) ran four: their "other commands a
# client" then reads one command a message too low here.
SCRIPT_COMMANDS = 5

def per_message(name, clients):
    """The Redis round trips a message, all commands a message, and the commands besides
    the messages' own a client connected (nick claims, presence, heartbeats)."""
    r = report(name)
    calls = redis_calls(name)
    sent = sum(s["messages_sent"] for s in r["steps"]) if r else 0
    if not calls or not sent:
        return "—"
    trips, own = (calls.get("evalsha", 0), 1 + SCRIPT_COMMANDS) if "evalsha" in calls else (calls.get("publish", 0), 1)
    total = sum(calls.values())
    return f"{trips / sent:.2f}, {total / sent:.2f}, {(total - own * trips) / clients:.2f}"

print(f"\n| {tag} | rate: p50 / p99 ms, lost | servers' CPU a message sent (whole fixed run) | Redis: round trips a message, commands a message, other commands a client; {large} / {small} clients | highest rate held (p99 <= {limit} ms), what stopped it |")
print("|---|---|---|---|---|")
for conf in confs:
    fixed, sat = report(f"{conf}-fixed"), report(f"{conf}-saturate")
    steps = "; ".join(
        f"{s['offered_deliveries_per_s'] // 1000}k: {s['p50_ms']:.1f} / {s['p99_ms']:.1f}, {s['lost']}"
        + (f" (dup {s['duplicates']})" if s["duplicates"] else "")
        for s in (fixed["steps"] if fixed else []))
    ticks, wall = open(f"{work}/{conf}-fixed.cpu").read().split()
    sent = sum(s["messages_sent"] for s in fixed["steps"]) if fixed else 0
    cpu = f"{int(ticks) / hz / sent * 1e6:.0f} µs" if sent else "—"
    held = sat and sat.get("max_sustained_deliveries_per_s")
    stop = ""
    if sat and sat["steps"]:
        s = sat["steps"][-1]
        t, w = open(f"{work}/{conf}-saturate.cpu").read().split()
        stop = (f"; at {s['offered_deliveries_per_s']:,}: p99 {s['p99_ms']:.0f} ms, lost {s['lost']}, "
                f"first node {s['server_cpu_percent'] or 0:.0f} % CPU, generator {s['generator_cpu_percent']:.0f} %; "
                f"servers {int(t) / hz / (int(w) / 1000) * 100:.0f} % of CPU 0 over the run")
    print(f"| {conf} | {steps} | {cpu} | {per_message(conf + '-fixed', large)} / {per_message(conf + '-small', small)} "
          f"| {f'{held:,}' if held else 'none'}{stop} |")
PY
