#!/usr/bin/env bash
# Interleaved before/after pairs of two charla builds, and the ratios the issues set, in one
# run (docs/benchmarks.md, "Quieter pairs"): the SQLite store against --data none (fan-out,
# and the rooms scenario), TLS and the WebSocket against plain text, IRC against text (500
# and 1,000 clients), and idle bytes per text and IRC connection. Each run has a fresh
# server pinned to CPU 0 (--flood-rate 0, --max-per-ip 0), the generator (NEW's) on CPU 1.
# Prints one line per rate; about 10 minutes.
#
#   bench/pairs.sh NEW_BINARY OLD_BINARY
set -euo pipefail
NEW=$1; OLD=$2
W=$(mktemp -d /tmp/charla-pairs.XXXXXX)
trap 'rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=charla-bench-ca -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout "$W/key.pem" -out "$W/req.pem" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$W/ext"
openssl x509 -req -in "$W/req.pem" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -days 2 -extfile "$W/ext" -out "$W/cert.pem" 2>/dev/null

SP=""
start() { # BINARY none|dir
  rm -rf "$W/d"; mkdir -p "$W/d"
  local data=$2; [ "$data" = dir ] && data=$W/d
  taskset -c 0 "$1" serve --data "$data" --flood-rate 0 --max-per-ip 0 --max-connections 19000 \
    --listen 127.0.0.1:16610 --listen tls://127.0.0.1:16611 --listen http://127.0.0.1:16612 \
    --listen irc://127.0.0.1:16614 --tls-cert "$W/cert.pem" --tls-key "$W/key.pem" > "$W/s.log" 2>&1 &
  SP=$!
  sleep 1.5
}
stop() { kill "$SP"; wait "$SP" 2>/dev/null || true; sleep 0.5; }
run() { # LABEL BINARY none|dir PROTOCOL PORT SCENARIO ARGS...
  local label=$1 bin=$2 data=$3 proto=$4 port=$5 scenario=$6; shift 6
  start "$bin" "$data"
  taskset -c 1 "$NEW" bench run "$scenario" --protocol "$proto" --ca "$W/ca.pem" \
    --addr 127.0.0.1:"$port" --server-pid "$SP" --duration 5 "$@" 2>/dev/null | grep '^| charla' |
    awk -F'|' -v l="$label" '{printf "%s rate=%s delivered=%s lost=%s p50=%s p99=%s server_cpu=%s generator_cpu=%s\n", l, $5, $6, $7, $10, $12, $17, $20}'
  stop
}
F="--clients 500 --senders 50 --rates 500000,2000000"
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- store: --data none / a data directory, OLD / a data directory, NEW"
for _ in 1 2 3; do
  run none "$NEW" none charla 16610 fanout $F
  run dir-old "$OLD" dir charla 16610 fanout $F
  run dir-new "$NEW" dir charla 16610 fanout $F
done
echo "-- transports (NEW): text / tls / ws"
for _ in 1 2 3; do
  run text "$NEW" none charla 16610 fanout $F
  run tls "$NEW" none charla-tls 16611 fanout $F
  run ws "$NEW" none charla-ws 16612 fanout $F
done
echo "-- IRC against text (NEW), 500 and 1,000 clients"
for _ in 1 2 3; do
  run text500 "$NEW" none charla 16610 fanout $F
  run irc500 "$NEW" none irc 16614 fanout $F
done
for _ in 1 2; do
  run text1000 "$NEW" none charla 16610 fanout --clients 1000 --senders 50 --rates 500000,2000000
  run irc1000 "$NEW" none irc 16614 fanout --clients 1000 --senders 50 --rates 500000,2000000
done
echo "-- idle bytes per connection (NEW), text / IRC"
for _ in 1 2; do
  for proto in charla:16610 irc:16614; do
    start "$NEW" none
    echo "idle ${proto%%:*}: $(taskset -c 1 "$NEW" bench run idle --protocol "${proto%%:*}" \
      --addr 127.0.0.1:"${proto##*:}" --server-pid "$SP" --clients 5000 --duration 3 2>/dev/null | grep '^| charla')"
    stop
  done
done
echo "-- rooms (NEW): --data none / a data directory, 10,000 clients in 1,000 rooms, 1,000 senders"
for _ in 1 2; do
  run rooms-none "$NEW" none charla 16610 rooms --clients 10000 --rooms 1000 --senders 1000 --rates 500000,2000000
  run rooms-dir "$NEW" dir charla 16610 rooms --clients 10000 --rooms 1000 --senders 1000 --rates 500000,2000000
done
echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
