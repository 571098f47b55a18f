#!/usr/bin/env bash
# fieldauth under Miri (issue #15): the core's unit and integration tests
# (with the transport drivers' features) and the C ABI crate's unit tests
# (incl. `storage_contract`, written for Miri), interpreted by
# `cargo +nightly miri test`, which reports undefined behaviour,
# out-of-bounds and uninitialized reads, invalid pointer use, aliasing
# violations (Stacked Borrows) and leaks in the code they run. The core is
# `forbid(unsafe_code)`; the C ABI crate and the core's dependencies
# (zeroize, sha2, embedded-io) are not.
#
#   bash tests/miri.sh                  # what CI runs (the quick set, below)
#   MIRI_FULL=1 bash tests/miri.sh      # every test: an hour or more
#   MIRI_JOBS=1 MIRI_NICE=19 bash tests/miri.sh
#
# Slow tests run a Miri-sized input under `cfg(miri)` instead of being
# skipped (exhaustive loops sample their range; the model test runs one case
# per subject; the simulation a few simulated minutes per preset; proptest a
# few cases). What is skipped and why, and the step's time, are in
# RELIABILITY.md ("Miri").
#
# Two groups, each in a target directory of its own (Miri builds share
# nothing with normal ones, and the outer `cargo test` keeps its lock on
# target/): the unit tests of both crates, and the core's integration tests.
# With MIRI_JOBS=2 (the default under CI=true on two or more cores) they run
# at the same time. Isolation stays on (no host clock, environment or files:
# runs are deterministic); a host operation a test attempts (proptest's
# regression file) fails with an error instead of aborting the run.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
say() { printf '[miri %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
NICE=${MIRI_NICE:-0}
CORES=$(nproc 2>/dev/null || echo 1)
if [ -n "${MIRI_JOBS:-}" ]; then
    JOBS=$MIRI_JOBS
elif [ "${CI:-}" = "true" ] && [ "$CORES" -ge 2 ]; then
    JOBS=2
else
    JOBS=1
fi

if ! rustup run nightly rustc -V >/dev/null 2>&1; then
    say "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri'; then
    say "installing miri and rust-src for nightly"
    rustup +nightly component add miri rust-src
fi
# Builds Miri's own sysroot once (cached in ~/.cache/miri).
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup

export MIRIFLAGS="${MIRIFLAGS:--Zmiri-isolation-error=warn-nobacktrace}"
FEATURES=embedded-io,embedded-io-async
LOGS=$(mktemp -d)

# MIRI_FULL=1: every unit and integration test (about an hour or more on
# two cores; see RELIABILITY.md). Without it (what CI runs, a few minutes):
# the C ABI's unit tests (its unsafe code: pointer checks, caller storage,
# the storage contract) and the core's unit tests except the modules whose
# tests drive whole exchanges (driver, http, session, request, json), plus
# the small integration suites. RELIABILITY.md lists what CI leaves out.
QUICK_SKIP=(--skip driver:: --skip http:: --skip session --skip request:: --skip json::)
QUICK_TESTS=(--test callback --test params --test error_trait --test fuzz_regressions)
unit() {
    export CARGO_TARGET_DIR=target/miri/unit
    cargo +nightly miri test -p fieldauth-ffi --locked --lib
    if [ "${MIRI_FULL:-0}" = 1 ]; then
        cargo +nightly miri test -p fieldauth --locked --features "$FEATURES" --lib
    else
        cargo +nightly miri test -p fieldauth --locked --features "$FEATURES" --lib -- "${QUICK_SKIP[@]}"
    fi
}
integration() {
    export CARGO_TARGET_DIR=target/miri/integration
    if [ "${MIRI_FULL:-0}" = 1 ]; then
        cargo +nightly miri test -p fieldauth --locked --features "$FEATURES" --test '*'
    else
        cargo +nightly miri test -p fieldauth --locked --features "$FEATURES" "${QUICK_TESTS[@]}"
    fi
}

run_group() {
    local name=$1
    local t0
    t0=$(date +%s)
    if nice -n "$NICE" bash -c "$(declare -p QUICK_SKIP QUICK_TESTS); $(declare -f "$name"); FEATURES=$FEATURES; $name" >"$LOGS/$name.log" 2>&1; then
        echo "$name: passed in $(( $(date +%s) - t0 ))s" >"$LOGS/$name.status"
    else
        echo "$name: FAILED after $(( $(date +%s) - t0 ))s" >"$LOGS/$name.status"
        return 1
    fi
}

if [ "${MIRI_FULL:-0}" = 1 ]; then
    say "every unit test (C ABI --lib, core --lib with the drivers) and every core integration test, $JOBS group(s) at a time"
else
    say "quick set: C ABI --lib; core --lib without ${QUICK_SKIP[*]}; ${QUICK_TESTS[*]} ($JOBS group(s) at a time; MIRI_FULL=1 runs everything)"
fi
failed=0
if [ "$JOBS" -ge 2 ]; then
    run_group unit & a=$!
    run_group integration & b=$!
    wait $a || failed=1
    wait $b || failed=1
else
    run_group unit || failed=1
    run_group integration || failed=1
fi
for g in unit integration; do
    # The test harness's summaries (one per test binary) and any failure.
    grep -E '^test result:|^error|panicked|Undefined Behavior|^failures:' "$LOGS/$g.log" | sed "s/^/  $g: /" || true
    cat "$LOGS/$g.status" 2>/dev/null || true
done
if [ "$failed" -ne 0 ]; then
    for g in unit integration; do
        if grep -q FAILED "$LOGS/$g.status" 2>/dev/null; then
            echo "---- $g log (last 60 lines) ----"
            tail -60 "$LOGS/$g.log"
        fi
    done
    rm -rf "$LOGS"
    say "Miri FAILED"
    exit 1
fi
rm -rf "$LOGS"
say "Miri passed in $(( $(date +%s) - START ))s"
