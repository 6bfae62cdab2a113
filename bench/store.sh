#!/usr/bin/env bash
# The SQLite store's cost against --data none, for two builds, in interleaved rounds
# (docs/benchmarks.md, "The writer stages its commits"): the rooms scenario (10,000
# clients in 1,000 rooms, 1,000 senders) and the fan-out (500 clients, 50 senders), each
# run on a fresh server pinned to CPU 0 with the generator (NEW's) on CPU 1, both under
# nice -n -10 (bench/store-lib.sh). Run it under `flock /tmp/bench.lock`; about 2 minutes
# a round.
#
#   bench/store.sh NEW_BINARY OLD_BINARY [ROUNDS]
set -euo pipefail
NEW=$1; OLD=$2; ROUNDS=${3:-3}
GEN=$NEW
. "$(dirname "$0")/store-lib.sh"
store_setup
store_stamp
for _ in $(seq "$ROUNDS"); do
  for s in "$STORE_ROOMS" "$STORE_FANOUT"; do
    # shellcheck disable=SC2086
    store_run none "$NEW" none $s
    # shellcheck disable=SC2086
    store_run dir-old "$OLD" dir $s
    # shellcheck disable=SC2086
    store_run dir-new "$NEW" dir $s
  done
done
store_stamp
