#!/usr/bin/env bash
# charla's fan-out over TLS and over the WebSocket against its plain text protocol, and
# against a Socket.IO server (bench/socketio, npm's socket.io 4), in one run; then how long
# /metrics takes to answer with 10,000 connections open. Writes bench/results/web-*.json
# and prints the tables; docs/benchmarks.md ("The web side") says what a run gave.
#
# As in bench/peers.sh every server runs pinned to CPU 0 and the generator to CPU 1, flood
# control and per-address caps off; charla keeps history in memory (--data none) so that
# only the transport differs. Rounds alternate the order of the three transports.
#
#   bench/web.sh              # two rounds, 5-second steps (about 10 minutes)
#   ROUNDS=4 bench/web.sh
#   QUICK=1 bench/web.sh      # one round, 2-second steps: a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 2)}
DURATION=$([ "$QUICK" = 1 ] && echo 2 || echo 5)
OUT=bench/results
WORK=$(mktemp -d /tmp/charla-web-bench.XXXXXX)
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

. bench/need.sh
need openssl openssl
need curl curl
need node nodejs
need npm npm
need taskset util-linux
[ -d bench/socketio/node_modules ] || (cd bench/socketio && npm ci --no-audit --no-fund --silent)

cargo build --release --quiet
CHARLA=$PWD/target/release/charla

# A CA of the run's own and a certificate for 127.0.0.1 signed by it (a self-signed
# certificate is a CA certificate, which rustls clients refuse as a server's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=charla-bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout "$WORK/key.pem" -out "$WORK/req.pem" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$WORK/ext"
openssl x509 -req -in "$WORK/req.pem" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/ext" -out "$WORK/cert.pem" 2>/dev/null

PID=""
wait_port() {
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on $1"; exit 1
}
start_charla() {
  taskset -c 0 "$CHARLA" serve --data none --flood-rate 0 --max-per-ip 0 \
    --max-connections 19000 --listen 127.0.0.1:16610 --listen tls://127.0.0.1:16611 \
    --listen http://127.0.0.1:16612 --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
    > "$WORK/charla.out" 2>&1 &
  PID=$!
  wait_port 16612
}
start_socketio() {
  taskset -c 0 node bench/socketio/server.js 16613 > "$WORK/socketio.out" 2>&1 &
  PID=$!
  wait_port 16613
}
stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  sleep 1
}
port_of() {
  case "$1" in charla) echo 16610 ;; charla-tls) echo 16611 ;; charla-ws) echo 16612 ;; socket-io) echo 16613 ;; esac
}
bench() { # label protocol extra-args...
  local label=$1 protocol=$2; shift 2
  echo "== $label"
  taskset -c 1 "$CHARLA" bench run fanout --protocol "$protocol" --addr "127.0.0.1:$(port_of "$protocol")" \
    --ca "$WORK/ca.pem" --label "$label" --server-pid "$PID" --json "$OUT/web-$label.json" "$@" \
    || echo "   ($label failed; see above)"
}

FANOUT=(--clients 500 --senders 50 --duration "$DURATION")
for round in $(seq "$ROUNDS"); do
  order="charla charla-tls charla-ws"
  [ $((round % 2)) = 0 ] && order="charla-ws charla-tls charla"
  for p in $order; do
    start_charla; bench "$p-r$round" "$p" "${FANOUT[@]}" --rates 500000,2000000; stop
  done
done

# The highest rate held with nothing lost and p99 <= 50 ms, each from its own start.
start_charla; bench charla-saturate charla "${FANOUT[@]}" --rates 500000 --saturate; stop
start_charla; bench charla-ws-saturate charla-ws "${FANOUT[@]}" --rates 500000 --saturate; stop
start_socketio; bench socket-io-saturate socket-io "${FANOUT[@]}" --rates 5000 --saturate; stop

# /metrics with 10,000 connections open: the clients of a slow fan-out stay connected
# while curl scrapes 50 times.
start_charla
taskset -c 1 "$CHARLA" bench run fanout --addr 127.0.0.1:16610 --clients 10000 --senders 10 \
  --rates 10000 --duration 30 --label scrape-load > "$WORK/scrape-load.out" 2>&1 &
LOAD=$!
for _ in $(seq 300); do
  open=$(curl -s http://127.0.0.1:16612/metrics | awk '$1 ~ /^charla_connections/ {n += $2} END {print n + 0}')
  [ "$open" -ge 10000 ] && break
  sleep 0.5
done
echo "== /metrics with $open connections open: 50 scrapes"
for _ in $(seq 50); do
  curl -s -o /dev/null -w '%{time_total}\n' http://127.0.0.1:16612/metrics
done | sort -n | awk '{t[NR] = $1 * 1000} END {printf "scrape ms: p50 %.2f, p90 %.2f, max %.2f\n", t[int(NR / 2)], t[int(NR * 0.9)], t[NR]}' \
  | tee "$OUT/web-scrape.txt"
curl -s http://127.0.0.1:16612/metrics | wc -c | awk '{print "exposition bytes: " $1}' | tee -a "$OUT/web-scrape.txt"
wait "$LOAD" || true
stop

"$CHARLA" bench report "$OUT"/web-*.json
rm -rf "$WORK"
