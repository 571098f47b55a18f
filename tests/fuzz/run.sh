#!/usr/bin/env bash
# fieldauth fuzzing (issue #15): builds every cargo-fuzz target in tests/fuzz
# (nightly, libFuzzer), replays the checked-in regression inputs, then fuzzes
# each target for a bounded time and fails on any crash, panic, timeout or
# out-of-memory. Used by .ci/run; see RELIABILITY.md for the targets, what
# each checks, and the figures of the long runs.
#
#   bash tests/fuzz/run.sh                      # CI: 40 s per target
#   bash tests/fuzz/run.sh 120                  # 120 s per target
#   bash tests/fuzz/run.sh 60 body_chunks       # some targets only
#   FUZZ_SECONDS=3600 bash tests/fuzz/run.sh    # the long campaign: one hour each
#   FUZZ_RUNS=10000000 bash tests/fuzz/run.sh 3600 head_framing
#                                               # stop at 10 M executions (or the hour)
#   FUZZ_SANITIZER=address bash tests/fuzz/run.sh 600 ffi_abi
#                                               # the C ABI target under ASan
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 40; the first argument wins)
#   FUZZ_RUNS       stop a target after this many executions (default: no limit)
#   FUZZ_JOBS       targets fuzzed at once (default: 2 under CI=true on a
#                   machine with at least 2 cores, else 1)
#   FUZZ_SANITIZER  none (default: the core forbids unsafe code) or address
#   FUZZ_NICE       nice level for builds and runs (default 0; 19 on a shared
#                   machine)
#
# Each target fuzzes in tests/fuzz/work/<target>/ (not checked in), seeded
# from corpus/<target>/ (the golden vectors) and regressions/<target>/ (the
# inputs of past findings); crashes land in tests/fuzz/artifacts/<target>/
# and the script prints the command that replays them. Needs the nightly
# toolchain and cargo-fuzz; both are installed here if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
FUZZ=tests/fuzz

SECONDS_PER_TARGET=${1:-${FUZZ_SECONDS:-40}}
[ $# -gt 0 ] && shift
ALL_TARGETS=(body_chunks head_framing snapshot_restore token_json_diff request_build credential_apply ffi_abi)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SANITIZER=${FUZZ_SANITIZER:-none}
NICE=${FUZZ_NICE:-0}
CORES=$(nproc 2>/dev/null || echo 1)
if [ -n "${FUZZ_JOBS:-}" ]; then
    JOBS=$FUZZ_JOBS
elif [ "${CI:-}" = "true" ] && [ "$CORES" -ge 2 ]; then
    JOBS=2
else
    JOBS=1
fi
START=$(date +%s)
say() { printf '[fuzz %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

# ---------------------------------------------------------------- tools
if ! rustup run nightly rustc -V >/dev/null 2>&1; then
    say "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# ---------------------------------------------------------------- build
say "building ${#TARGETS[@]} target(s) (sanitizer: $SANITIZER, debug assertions and overflow checks on)"
TARGET_DIR="$ROOT/$FUZZ/target/$SANITIZER"
build() {
    nice -n "$NICE" cargo +nightly fuzz build --fuzz-dir "$FUZZ" --sanitizer "$SANITIZER" \
        --debug-assertions --target-dir "$TARGET_DIR" "$@" >"$FUZZ/work/build.log" 2>&1 ||
        { cat "$FUZZ/work/build.log"; exit 1; }
}
mkdir -p "$FUZZ/work"
if [ $# -eq 0 ]; then
    build
else
    for t in "${TARGETS[@]}"; do build "$t"; done
fi
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN="$TARGET_DIR/$HOST/release"

# ---------------------------------------------------------------- regressions
FAILED=()
for t in "${TARGETS[@]}"; do
    reg="$FUZZ/regressions/$t"
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        if ! nice -n "$NICE" "$BIN/$t" "$reg"/* >"$FUZZ/work/$t-regressions.log" 2>&1; then
            say "FAIL: $t crashes on a checked-in regression input (log: $FUZZ/work/$t-regressions.log)"
            FAILED+=("$t (regression)")
        else
            say "$t: $(ls "$reg" | wc -l) regression input(s) pass"
        fi
    fi
done

# ---------------------------------------------------------------- fuzz
fuzz_one() {
    local t=$1
    local work="$FUZZ/work/$t" art="$FUZZ/artifacts/$t/" log="$FUZZ/work/$t.log"
    mkdir -p "$work" "$art"
    local dirs=("$work" "$FUZZ/corpus/$t")
    [ -d "$FUZZ/regressions/$t" ] && dirs+=("$FUZZ/regressions/$t")
    local extra=()
    [ -n "${FUZZ_RUNS:-}" ] && extra+=("-runs=$FUZZ_RUNS")
    local rc=0
    nice -n "$NICE" "$BIN/$t" "${dirs[@]}" -max_total_time="$SECONDS_PER_TARGET" "${extra[@]}" \
        -timeout=10 -rss_limit_mb=2048 -max_len=8192 -artifact_prefix="$art" \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    local last
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $t (exit $rc) after ${runs:-?} executions; log: $log"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|deadly signal|Test unit written' "$log" | head -8 | sed 's/^/    /'
        for a in "$art"*; do
            [ -e "$a" ] && echo "    replay: cargo +nightly fuzz run --fuzz-dir $FUZZ -s $SANITIZER -a $t $a"
        done
        return 1
    fi
    echo "ok   $t: ${runs:-?} executions in ${SECONDS_PER_TARGET}s; last status: ${last:-none}"
}

say "fuzzing each target for ${SECONDS_PER_TARGET}s${FUZZ_RUNS:+ (or $FUZZ_RUNS executions)}, $JOBS at a time"
RESULTS=$(mktemp -d)
running=0
for t in "${TARGETS[@]}"; do
    ( if fuzz_one "$t" >"$RESULTS/$t" 2>&1; then :; else touch "$RESULTS/$t.failed"; fi ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
for t in "${TARGETS[@]}"; do
    cat "$RESULTS/$t"
    [ -e "$RESULTS/$t.failed" ] && FAILED+=("$t")
done
rm -rf "$RESULTS"

if [ ${#FAILED[@]} -gt 0 ]; then
    say "FAILED: ${FAILED[*]}"
    exit 1
fi
say "all ${#TARGETS[@]} target(s) ran clean"
