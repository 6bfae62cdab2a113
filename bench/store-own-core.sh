#!/usr/bin/env bash
# The SQLite store's cost against --data none when the writer has a core other than the
# hub's (docs/benchmarks.md, "The writer on a core of its own"): one build, interleaved
# rounds of the rooms scenario (10,000 clients in 1,000 rooms, 1,000 senders) and the
# fan-out (500 clients, 50 senders): `none` (--data none), `dir` (a data directory, the
# writer on CPU 0 with the rest of the server) and `own` (the writer thread moved to
# CPU 1, beside the generator), as bench/store-lib.sh runs them; KINDS="none-free dir-free"
# runs the server unpinned instead. Run it under `flock /tmp/bench.lock`; about 2 minutes
# a round.
#
#   [KINDS="none dir own"] bench/store-own-core.sh BINARY [ROUNDS]
set -euo pipefail
BIN=$1; ROUNDS=${2:-3}
GEN=$BIN
. "$(dirname "$0")/store-lib.sh"
store_setup
store_stamp
for _ in $(seq "$ROUNDS"); do
  for s in "$STORE_ROOMS" "$STORE_FANOUT"; do
    for kind in ${KINDS:-none dir own}; do
      # shellcheck disable=SC2086
      store_run "$kind" "$BIN" "$kind" $s
    done
  done
done
store_stamp
