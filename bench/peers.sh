#!/usr/bin/env bash
# Benchmarks charla side by side with the servers people would use instead, in one run:
# ncat --chat, ngircd and InspIRCd (Debian packages), and charla's own IRC listener
# (charla-irc: the same server, spoken to as the IRC peers are), then writes bench/results/*.json,
# docs/benchmarks-latest.md (the tables) and docs/fanout.svg (the chart).
#
# Every server runs pinned to CPU 0 and the load generator (charla bench) to CPU 1, so the
# two compete as little as a 2-core machine allows. Flood control and per-address caps are
# off everywhere (the peers' defaults throttle to about one line a second); the exact
# settings are the config files written below.
#
#   bench/peers.sh            # full run (about 25 minutes)
#   QUICK=1 bench/peers.sh    # 3-second steps, fewer cycles: a smoke run
#   SERVERS="charla ngircd" bench/peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
SERVERS=${SERVERS:-"charla charla-irc ncat ngircd inspircd"}
DURATION=$([ "$QUICK" = 1 ] && echo 3 || echo 5)
CYCLES=$([ "$QUICK" = 1 ] && echo 5000 || echo 50000)
RATES=${RATES:-"20000,500000,2000000,5000000,10000000"}
OUT=bench/results
WORK=$(mktemp -d /tmp/charla-bench.XXXXXX)
mkdir -p "$OUT" docs
ulimit -n "$(ulimit -Hn)"

. bench/need.sh
need ncat ncat
need ngircd ngircd
need inspircd inspircd
need taskset util-linux

cargo build --release --quiet
CHARLA=$PWD/target/release/charla
SERVER_CPU=0
GEN_CPU=1
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=0; GEN_CPU=0; echo "one CPU only: server and generator share it"; }

cat > "$WORK/ngircd.conf" <<CONF
[Global]
Name = bench.charla.test
Info = charla benchmark peer
Listen = 127.0.0.1
Ports = 16601
PidFile = $WORK/ngircd.pid
ServerUID = root
ServerGID = root
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
CONF

cat > "$WORK/inspircd.conf" <<CONF
<server name="bench.charla.test" description="charla benchmark peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="16602" type="clients">
<connect name="bench" allow="*" maxchans="100" timeout="60" pingfreq="600"
         hardsendq="1G" softsendq="64M" recvq="1M" threshold="1000000"
         commandrate="100000000" fakelag="no" localmax="1000000" globalmax="1000000"
         limit="1000000" maxconnwarn="no" resolvehostnames="no" useident="no">
<performance softlimit="20000" somaxconn="4096" nouserdns="yes">
<limits maxnick="30" maxchan="64">
<pid file="$WORK/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$WORK/inspircd.log">
CONF

PID=""
start() {
  case "$1" in
    charla)
      # History kept as shipped, in a fresh file of this run's (not the user's own);
      # CHARLA_DATA=none bench/peers.sh measures the memory store instead.
      rm -rf "$WORK"/data
      taskset -c $SERVER_CPU "$CHARLA" serve --listen 127.0.0.1:16600 --flood-rate 0 \
        --max-per-ip 0 --max-connections 19000 --data "${CHARLA_DATA:-$WORK/data}" \
        > "$WORK/charla.out" 2>&1 &
      PID=$!; PROTO=charla; PORT=16600 ;;
    charla-irc)
      rm -rf "$WORK"/data
      taskset -c $SERVER_CPU "$CHARLA" serve --listen 127.0.0.1:16600 --listen irc://127.0.0.1:16604 \
        --flood-rate 0 --max-per-ip 0 --max-connections 19000 --data "${CHARLA_DATA:-$WORK/data}" \
        > "$WORK/charla-irc.out" 2>&1 &
      PID=$!; PROTO=irc; PORT=16604 ;;
    ngircd)
      taskset -c $SERVER_CPU ngircd --nodaemon --config "$WORK/ngircd.conf" > "$WORK/ngircd.out" 2>&1 &
      PID=$!; PROTO=irc; PORT=16601 ;;
    inspircd)
      taskset -c $SERVER_CPU inspircd --runasroot --nofork --config="$WORK/inspircd.conf" > "$WORK/inspircd.out" 2>&1 &
      PID=$!; PROTO=irc; PORT=16602 ;;
    ncat)
      # ncat uses select(): at most about 1000 clients.
      taskset -c $SERVER_CPU ncat --chat --listen 127.0.0.1 16603 --max-conns 1020 > "$WORK/ncat.out" 2>&1 &
      PID=$!; PROTO=lines; PORT=16603 ;;
  esac
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not start; its output:"; cat "$WORK/$1.out"; exit 1
}
stop() { # SIGTERM, then SIGKILL after 10 s: a server busy with 10,000 clients may not hear
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  sleep 1
}

bench() { # server scenario extra-args...
  local name=$1 scenario=$2; shift 2
  echo "== $name: $scenario $*"
  taskset -c $GEN_CPU "$CHARLA" bench run "$scenario" --addr 127.0.0.1:$PORT --protocol $PROTO \
    --label "$name" --server-pid "$PID" --json "$OUT/$name-$scenario.json" "$@" \
    || echo "   ($name $scenario failed; see above)"
}

# The floor first: no server, a bare writer on the servers' CPU writing to 500 and 1,000
# loopback sockets in turn, the readers on the generator's (src/bench/floor.rs) — what
# this machine allows any server today.
for n in 500 1000; do
  echo "== floor: $n sockets"
  taskset -c $GEN_CPU "$CHARLA" bench run floor --clients $n --duration "$DURATION" \
    --writer-cpu $SERVER_CPU --label floor-$n --json "$OUT/floor-$n.json" \
    || echo "   (floor $n failed; see above)"
done

for s in $SERVERS; do
  # 500 clients: the peers' own comparison (ncat's select() loop tops out below 1000).
  start "$s"; bench "$s" fanout --clients 500 --senders 50 --duration "$DURATION" --rates "$RATES"; stop
  start "$s"; bench "$s" idle --clients 900; stop
  case "$s" in
    charla)
      start "$s"; bench charla-1000 fanout --clients 1000 --senders 50 --duration "$DURATION" --rates "$RATES"; stop
      start "$s"; bench charla-10k idle --clients 10000; stop
      # Connections that do nothing at all: each a guest in #lobby, as an nc user is.
      start "$s"; PROTO=lines bench charla-10k-bare idle --clients 10000; stop
      cycles=$CYCLES ;;
    charla-irc)
      start "$s"; bench charla-irc-1000 fanout --clients 1000 --senders 50 --duration "$DURATION" --rates "$RATES"; stop
      start "$s"; bench charla-irc-10k idle --clients 10000; stop
      cycles=$CYCLES ;;
    ngircd) cycles=$((CYCLES / 10)) ;;
    inspircd) cycles=1000 ;;  # it accepts about 60 connections a second
    *) cycles=0 ;;
  esac
  if [ "$s" != ncat ]; then
    # The highest fan-out rate each holds with nothing lost and p99 ≤ 50 ms: from 500k up
    # by half each step (ncat loses deliveries at every rate, so it has none).
    start "$s"; bench "$s-saturate" fanout --clients 500 --senders 50 --duration "$DURATION" \
      --rates 500000 --saturate --p99-limit-ms 50; stop
    if [ "$s" = charla ] || [ "$s" = charla-irc ]; then
      start "$s"; bench "$s-1000-saturate" fanout --clients 1000 --senders 50 \
        --duration "$DURATION" --rates 500000 --saturate --p99-limit-ms 50; stop
    fi
    start "$s"; bench "$s" rooms --clients 10000 --rooms 1000 --senders 1000 --duration "$DURATION" --rates 500000,2000000; stop
    start "$s"; bench "$s" churn --cycles "$cycles"; stop
  fi
done

{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), Linux $(uname -r)."
  echo "Servers pinned to CPU $SERVER_CPU, generator to CPU $GEN_CPU; ${DURATION}s per rate; 100-byte messages."
  echo
  "$CHARLA" bench report "$OUT"/*.json --svg docs/fanout.svg
} > docs/benchmarks-latest.md
echo "wrote docs/benchmarks-latest.md and docs/fanout.svg"
rm -rf "$WORK"
