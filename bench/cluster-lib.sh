# Sourced by bench/cluster.sh and bench/cluster-peers.sh: starts charla nodes, Socket.IO
# nodes (bench/socketio/server.js) and Redis, all pinned to CPU 0, and reads the CPU they
# spent. Needs BIN (the charla binary) and WORK (a scratch directory, removed on exit).
ulimit -n "$(ulimit -Hn)"
. "$(dirname "${BASH_SOURCE[0]}")/need.sh"
need redis-server redis-server
need taskset util-linux
PIDS=()
# Stops everything started since the last cleanup.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until LOG holds a line matching PATTERN; sets ADDR to the first `127.0.0.1:PORT` after it.
await_addr() {
  local log=$1 pattern=$2
  for _ in $(seq 100); do
    ADDR=$(grep -so "${pattern}127\.0\.0\.1:[0-9]*" "$log" | head -1 | grep -o '127[0-9.:]*' || true)
    [ -n "$ADDR" ] && return
    sleep 0.1
  done
  echo "server did not start: $(cat "$log")" >&2
  exit 1
}

# Starts a charla node (extra arguments: --cluster …); sets ADDR and PID.
node() {
  local log=$WORK/node-$RANDOM.log
  CHARLA_DATA=none taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 --flood-rate 0 --max-per-ip 0 \
    --max-connections 20000 "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  await_addr "$log" 'addr=tcp://'
}

# Starts a Socket.IO node; with a Redis URL as argument, on @socket.io/redis-adapter. Sets
# ADDR and PID.
sio_node() {
  local log=$WORK/sio-$RANDOM.log port
  port=$(free_port)
  REDIS_URL=${1:-} taskset -c 0 node "$(dirname "${BASH_SOURCE[0]}")/socketio/server.js" "$port" \
    >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  await_addr "$log" 'listening on '
}

# Starts Redis without persistence; sets RPORT and RPID.
redis() {
  RPORT=$(free_port)
  taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

# Clock ticks (user + system) spent so far by the processes named.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
