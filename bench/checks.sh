#!/bin/sh
# 1,000 http checks every 10 s against a local charla's /healthz (docs/benchmarks.md, "HTTP
# checks"): the CPU and resident memory of the server that runs them.
# usage: bench/checks.sh CHARLA N SECONDS
set -e
BIN=$1; N=$2; SECS=$3
$BIN serve --listen http://127.0.0.1:0 --data none --max-per-ip 0 --max-connections 20000 --http-rate 0 > target.out 2>/dev/null &
TPID=$!
sleep 1
TADDR=$(sed -n 's/^listening on http:\/\///p' target.out | head -1)
CHECKS=$(i=0; while [ $i -lt $N ]; do echo "c$i=http://$TADDR/healthz"; i=$((i+1)); done)
CHARLA_CHECK="$CHECKS" $BIN serve --listen tcp://127.0.0.1:0 --data none --check-interval 10s > server.out 2>/dev/null &
SPID=$!
sleep 15   # every check ran at least once
t0=$(awk '{print $14+$15}' /proc/$SPID/stat)
sleep $SECS
t1=$(awk '{print $14+$15}' /proc/$SPID/stat)
rss=$(awk '/VmRSS/{print $2}' /proc/$SPID/status)
hz=$(getconf CLK_TCK)
echo "checks=$N cpu_percent=$(echo "scale=2; ($t1-$t0)*100/$hz/$SECS" | bc) rss_kib=$rss"
kill $SPID $TPID
wait 2>/dev/null || true
