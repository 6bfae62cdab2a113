#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests that start real servers on free
# ports. Installs what the tests need besides Rust when it is missing: tmux, in which the
# console client's terminal tests type and read the screen.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null; then
    echo "== installing tmux (the console client's terminal tests run in it)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tmux >/dev/null
fi

exec cargo test --all-targets "$@"
