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
. "$(dirname "$0")/cluster-lib.sh"

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
cleanup

redis
ADDRS=(); NODES=""
for _ in 1 2 3; do
  node --cluster "redis://127.0.0.1:$RPORT"
  ADDRS+=("$ADDR"); NODES="${NODES:+$NODES }$PID"
done
redis-cli -p "$RPORT" config resetstat >/dev/null
load "$NODES $RPID" --addr "${ADDRS[0]}" --also "${ADDRS[1]}" --also "${ADDRS[2]}" --server-pid "${NODES%% *}"
redis-cli -p "$RPORT" info commandstats | grep -E 'cmdstat_(eval|evalsha|publish|script)' || true
