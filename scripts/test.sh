#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests that start real servers on free
# ports. Installs what the tests need besides Rust when it is missing: tmux, in which the
# console client's and the IRC clients' terminal tests type and read the screen; irssi and
# WeeChat, the IRC clients; a C compiler and make, with which the jemalloc allocator is
# built; chromium and chromium-driver, in which the chat page is tested
# (tests/it/browser.rs); redis-server, which the cluster tests start on ports of their own
# (tests/it/cluster.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v irssi >/dev/null || missing+=(irssi)
command -v weechat >/dev/null || missing+=(weechat)
command -v cc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The fuzz crate is its own workspace, so nothing else builds it (docs/fuzzing.md). Where it
# has been checked before (fuzz/target/debug exists), checking it again takes seconds and
# tells at once that a change to charla broke a target; from nothing it takes minutes, so a
# fresh machine, CI's included, skips it.
if [ -d fuzz/target/debug ]; then
    echo "== checking the fuzz targets"
    cargo check --manifest-path fuzz/Cargo.toml --bins --quiet
fi

exec cargo test --all-targets "$@"
