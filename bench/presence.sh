#!/usr/bin/env bash
# How long a node started beside one with SESSIONS users takes to know them all, and how
# many publications that took (docs/benchmarks.md "Presence told to a node that joins").
# Redis and the nodes run on CPU 0, the clients on CPU 1.
#
#   bench/presence.sh BINARY [SESSIONS [ROUNDS]]     # defaults 5000 and 3
#
# Node one gets SESSIONS JSON clients, each in one of 100 rooms; then, ROUNDS times, node
# two is started and a client on it asks for the census every 5 ms until it counts every
# user. Prints, for each start: the time from starting node two to its knowing them all,
# the PUBLISH calls Redis ran meanwhile (heartbeats, node two's hello and its own round
# included), and the CPU node one, node two and Redis spent.
set -euo pipefail
BIN=$(realpath "$1")
SESSIONS=${2:-5000}
ROUNDS=${3:-3}
WORK=$(mktemp -d /tmp/charla-presence.XXXXXX)
. "$(dirname "$0")/cluster-lib.sh"

redis
node --cluster "redis://127.0.0.1:$RPORT"
ONE_ADDR=$ADDR ONE_PID=$PID
taskset -c 1 python3 - "$BIN" "$SESSIONS" "$ROUNDS" "$ONE_ADDR" "$ONE_PID" "$RPORT" "$RPID" "$WORK" <<'PY'
import asyncio, json, os, resource, socket, subprocess, sys, time

bin_, sessions, rounds, one_addr, one_pid, rport, rpid, work = sys.argv[1:]
sessions, rounds = int(sessions), int(rounds)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
hz = os.sysconf("SC_CLK_TCK")

def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

def redis(*args):
    return subprocess.run(["redis-cli", "-p", rport, *args], capture_output=True, text=True).stdout

def publishes():
    for line in redis("info", "commandstats").splitlines():
        if line.startswith("cmdstat_publish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0

async def drain(reader):
    while await reader.read(65536):
        pass

async def session(host, port, n, ready):
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()  # the welcome
    hello = {"type": "hello", "nick": f"p{n}", "rooms": [f"#r{n % 100}"]}
    writer.write((json.dumps(hello) + "\n").encode())
    await writer.drain()
    while b'"welcome"' not in await reader.readline():
        pass
    ready.append(n)
    asyncio.ensure_future(drain(reader))
    return writer

async def census_until(port, want):
    """Connects to node two as soon as it listens, then asks for the census until it
    counts `want` users; returns when it listened and when it counted them."""
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.002)
    listened = time.monotonic()
    await reader.readline()
    writer.write(b'{"type":"hello","nick":"watcher","rooms":[]}\n')
    while True:
        writer.write(b'{"type":"census"}\n')
        await writer.drain()
        while True:
            line = json.loads(await reader.readline())
            if line.get("type") == "census":
                break
        if line["users"] >= want:
            writer.close()
            return listened, time.monotonic()
        await asyncio.sleep(0.005)

async def main():
    host, port = one_addr.rsplit(":", 1)
    ready, writers = [], []
    for start in range(0, sessions, 200):
        writers += await asyncio.gather(
            *(session(host, int(port), n, ready) for n in range(start, min(start + 200, sessions)))
        )
    print(f"{len(ready)} sessions on node one")
    await asyncio.sleep(1)
    for r in range(rounds):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        two_port = probe.getsockname()[1]
        probe.close()
        redis("config", "resetstat")
        before = (ticks(one_pid), ticks(rpid))
        log = open(f"{work}/two-{r}.log", "w")
        started = time.monotonic()
        two = subprocess.Popen(
            ["taskset", "-c", "0", bin_, "serve", "--listen", f"127.0.0.1:{two_port}",
             "--flood-rate", "0", "--max-per-ip", "0", "--cluster", f"redis://127.0.0.1:{rport}"],
            env={**os.environ, "CHARLA_DATA": "none"}, stdout=log, stderr=log)
        listened, known = await census_until(two_port, sessions + 1)
        published = publishes()
        cpu = [(ticks(one_pid) - before[0]) / hz, ticks(two.pid) / hz, (ticks(rpid) - before[1]) / hz]
        print(f"start {r + 1}: all {sessions} known {1000 * (known - started):.0f} ms after node two "
              f"started ({1000 * (known - listened):.0f} ms after it listened); "
              f"{published} publications; CPU s node one {cpu[0]:.2f}, node two {cpu[1]:.2f}, "
              f"Redis {cpu[2]:.2f}")
        two.terminate()
        two.wait()
        await asyncio.sleep(2)
    for w in writers:
        w.close()

asyncio.run(main())
PY
