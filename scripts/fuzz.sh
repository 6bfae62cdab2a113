#!/usr/bin/env bash
# Fuzzes charla's parsers (docs/fuzzing.md): runs each cargo-fuzz target under fuzz/ for
# EXECUTIONS inputs (default 1,000,000), or only the TARGETs named, and fails at the first
# crash or hang; the input that caused it is left in fuzz/artifacts/TARGET/. Installs the
# nightly toolchain and cargo-fuzz when they are missing. Not run in CI.
#
# Without a sanitizer by default: charla has no `unsafe` code, and AddressSanitizer made the
# slowest target several times slower (docs/fuzzing.md). FUZZ_SANITIZER=address brings it back.
#
#   scripts/fuzz.sh [EXECUTIONS] [TARGET...]
#   taskset -c 1 scripts/fuzz.sh 3000000 framer    # one core, one target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

runs="${1:-1000000}"
shift || true
case "$runs" in
    '' | *[!0-9]*)
        echo "usage: scripts/fuzz.sh [EXECUTIONS] [TARGET...]" >&2
        exit 2
        ;;
esac

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "== installing the nightly toolchain (libFuzzer's sanitizer flags need it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# A hang is an input that takes more than 10 s; with a bounded line nothing should take
# a millisecond.
for target in "${targets[@]}"; do
    # libFuzzer lets inputs grow to 4,096 bytes, and the codecs' checks cost in proportion:
    # their line bounds are 510 bytes (line_codec, the largest bound it draws) and 512
    # (irc_codec, a line with its CRLF), so 1,024 bytes still hold an over-long line and a
    # line after it. irc_codec's bound on tags (8,191 bytes) is out of reach either way;
    # `framer` covers the framer's bound with small bounds.
    case "$target" in
        line_codec | irc_codec) max_len=(-max_len=1024) ;;
        *) max_len=() ;;
    esac
    echo "== $target: $runs executions ${max_len[*]}"
    start=$SECONDS
    cargo +nightly fuzz run -O -s "${FUZZ_SANITIZER:-none}" "$target" -- -runs="$runs" -timeout=10 -print_final_stats=1 \
        "${max_len[@]}"
    echo "== $target: $runs executions, no crash, $((SECONDS - start)) s"
done
