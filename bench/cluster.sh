#!/usr/bin/env bash
# Three charla nodes on one Redis against one node alone, same clients and rates
# (docs/cluster.md, docs/benchmarks.md "Cluster"). The nodes and Redis run on CPU 0, the
# load generator on CPU 1; clients are spread over the nodes in turn (`--also`).
#
#   bench/cluster.sh BINARY [LABEL]         # one pair: one node, then three nodes
#   RATES=500000 DURATION=5 CLIENTS=500 bench/cluster.sh target/release/charla after
#   EXTRA="--saturate --p99-limit-ms 200" RATES=500000 DURATION=2 bench/cluster.sh BINARY
#
# Prints the generator's report of each run and the CPU the servers (all nodes and Redis)
# spent per message offered.
set -euo pipefail
BIN=$(realpath "$1")
LABEL=${2:-charla}
RATES=${RATES:-500000}
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-500}
SENDERS=${SENDERS:-50}
WORK=$(mktemp -d /tmp/charla-cluster.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"
. "$(dirname "$0")/need.sh"
need redis-server redis-server
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'cleanup; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a node (extra arguments: --cluster …); sets ADDR and PID.
node() {
  local log=$WORK/node-$RANDOM.log
  CHARLA_DATA=none taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 --flood-rate 0 --max-per-ip 0 \
    --max-connections 20000 "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    ADDR=$(grep -o 'addr=tcp://[0-9.:]*' "$log" | head -1 | cut -d/ -f3 || true)
    [ -n "$ADDR" ] && return
    sleep 0.1
  done
  echo "node did not start: $(cat "$log")" >&2
  exit 1
}

# Clock ticks (user + system) spent so far by the processes named.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

# Runs the generator against ADDR (and the --also addresses given); prints its report and
# the servers' CPU per offered message.
load() {
  local servers=$1; shift
  local before; before=$(ticks $servers)
  local out=$WORK/run-$RANDOM.json
  taskset -c 1 "$BIN" bench run fanout "$@" --clients "$CLIENTS" --senders "$SENDERS" \
    --rates "$RATES" --duration "$DURATION" --json "$out" --label "$LABEL" ${EXTRA:-}
  local after; after=$(ticks $servers)
  local each=""
  for p in $servers; do each="$each $(awk '{print $14 + $15}' "/proc/$p/stat")"; done
  echo "ticks since start, each server process (nodes, then Redis):$each"
  local hz; hz=$(getconf CLK_TCK)
  python3 - "$out" "$((after - before))" "$hz" "$CLIENTS" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
ticks, hz, clients = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
steps = report["steps"] if isinstance(report, dict) and "steps" in report else report
sent = sum(s.get("messages_sent", 0) for s in steps) if isinstance(steps, list) else 0
if report.get("max_sustained_deliveries_per_s"):
    print(f"highest rate held: {report['max_sustained_deliveries_per_s']:.0f} deliveries/s")
if sent:
    print(f"servers' CPU: {ticks / hz:.2f} s for {sent} messages: {ticks / hz / sent * 1e6:.1f} us a message")
else:
    print(f"servers' CPU: {ticks / hz:.2f} s")
PY
}

node
load "$PID" --addr "$ADDR" --server-pid "$PID"
cleanup; PIDS=()

PORT=$(free_port)
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
RPID=$!
PIDS+=("$RPID")
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
ADDRS=(); NODES=""
for _ in 1 2 3; do
  node --cluster "redis://127.0.0.1:$PORT"
  ADDRS+=("$ADDR"); NODES="${NODES:+$NODES }$PID"
done
redis-cli -p "$PORT" config resetstat >/dev/null
load "$NODES $RPID" --addr "${ADDRS[0]}" --also "${ADDRS[1]}" --also "${ADDRS[2]}" --server-pid "${NODES%% *}"
redis-cli -p "$PORT" info commandstats | grep -E 'cmdstat_(eval|evalsha|publish|script)' || true
