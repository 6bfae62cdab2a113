#!/usr/bin/env bash
# How long HTTP history reads take from a large history file made with PAGE-byte pages
# (docs/benchmarks.md, store8): a fresh --data directory whose file is made with that page
# size, filled by the rooms scenario at 500k deliveries/s for SECONDS (1,000 rooms), then a
# fresh server on it (CPU 0) answers `GET /rooms/benchN/messages` for every room, three
# ways: the newest 50, `since=0&limit=1000` (oldest first, the file's oldest chunks) and
# `before=` the room's 10th id `&limit=50`. Prints each way's mean, p50 and p99 per request
# (ms, a keep-alive client on CPU 1) and the file's size. Run it under flock /tmp/bench.lock.
#
#   bench/history-reads.sh BINARY PAGE [SECONDS]
set -euo pipefail
BIN=$1; PAGE=$2; SECONDS_FILL=${3:-16}
W=$(mktemp -d /tmp/charla-hr.XXXXXX)
trap 'kill $sp 2>/dev/null; rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
mkdir -p "$W/d"
# A file with pages of PAGE bytes and nothing else: the server keeps its page size.
sqlite3 "$W/d/charla.db" "PRAGMA page_size = $PAGE; CREATE TABLE made (x); DROP TABLE made;"
serve() {
  taskset -c 0 nice -n -10 "$BIN" serve --data "$W/d" --flood-rate 0 --max-per-ip 0 \
    --max-connections 19000 --listen 127.0.0.1:16625 --listen http://127.0.0.1:16626 \
    > "$W/s.log" 2>&1 &
  sp=$!
  sleep 1.5
}
serve
taskset -c 1 "$BIN" bench run rooms --addr 127.0.0.1:16625 --duration "$SECONDS_FILL" \
  --clients 10000 --rooms 1000 --senders 1000 --rates 500000 > /dev/null 2>&1
kill "$sp"; wait "$sp" 2>/dev/null || true
echo "page $(sqlite3 "$W/d/charla.db" 'PRAGMA page_size') bytes, $(sqlite3 "$W/d/charla.db" 'SELECT sum(count) FROM chunks') entries, file $(du -sh "$W/d/charla.db" | cut -f1)"
serve
taskset -c 1 python3 - <<'PY'
import http.client, json, time, statistics
c = http.client.HTTPConnection("127.0.0.1", 16626)
def get(path):
    t = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse(); body = r.read()
    assert r.status == 200, (path, r.status, body[:200])
    return time.perf_counter() - t, json.loads(body)
rooms = [f"bench{n}" for n in range(1000)]
tenth = {}
for label, make in [
    ("newest 50", lambda r: f"/rooms/{r}/messages?limit=50"),
    ("since=0 limit=1000", lambda r: f"/rooms/{r}/messages?since=0&limit=1000"),
    ("before=10th limit=50", lambda r: f"/rooms/{r}/messages?before={tenth[r]}&limit=50"),
]:
    times = []
    for r in rooms:
        dt, body = get(make(r))
        if label.startswith("since"):
            msgs = body.get("messages") or body.get("history") or []
            tenth[r] = msgs[min(9, len(msgs) - 1)]["id"] if msgs else 1
        times.append(dt * 1000)
    times.sort()
    print(f"{label}: mean {statistics.mean(times):.3f} p50 {times[len(times)//2]:.3f} p99 {times[int(len(times)*0.99)]:.3f} ms")
PY
