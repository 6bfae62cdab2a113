#!/bin/bash
# The Redis CPU a room message's script costs (usec_per_call of EVALSHA, INFO commandstats)
# as charla runs it, without and with its backlog's expiry refreshed (`PEXPIRE`,
# CLUSTER_BACKLOG_TTL): 200,000 calls each, 10 clients, pipelines of 16, three rounds in
# turn, on a scratch redis-server. Usage: bench/said-script.sh [PORT]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/need.sh"
need redis-server redis-server
PORT=${1:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
redis-server --port "$PORT" --save '' --appendonly no >/dev/null &
REDIS=$!
trap 'kill $REDIS 2>/dev/null || true; wait 2>/dev/null || true' EXIT
until redis-cli -p "$PORT" PING >/dev/null 2>&1; do sleep 0.1; done
BODY="local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if s <= floor then s = floor + 1; redis.call('SET', KEYS[1], s) end
local payload = s .. '\n' .. ARGV[2]
redis.call('RPUSH', KEYS[3], payload)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)"
TAIL="redis.call('PUBLISH', KEYS[2], payload)
return s"
WITHOUT=$(redis-cli -p "$PORT" SCRIPT LOAD "$BODY
$TAIL")
WITH=$(redis-cli -p "$PORT" SCRIPT LOAD "$BODY
redis.call('PEXPIRE', KEYS[3], ARGV[4])
$TAIL")
JSON='{"t":"said","node":1,"room":"#ops","id":4294967297,"ts":1700000000000,"from":"ana","text":"hello there, this is a message of a usual length","action":false,"notice":false,"by":4294967297}'
for round in 1 2 3; do
  for which in without with; do
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    sha=$WITHOUT
    [ "$which" = with ] && sha=$WITH
    redis-benchmark -p "$PORT" -n 200000 -c 10 -P 16 -q \
      EVALSHA "$sha" 3 charla:seq:#ops charla:bus charla:log:#ops 0 "$JSON" 1000 2592000000 >/dev/null
    per=$(redis-cli -p "$PORT" INFO commandstats | sed -n 's/.*cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')
    echo "round $round, $which expiry: $per µs a message"
  done
done
