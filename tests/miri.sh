#!/usr/bin/env bash
# fieldauth under Miri (issue #15): every unit test of the core (with the
# transport drivers' features) and of the C ABI crate (incl.
# `storage_contract`, written for Miri), and every integration suite of the
# core that builds with those features, interpreted by
# `cargo +nightly miri test`, which reports undefined behaviour,
# out-of-bounds and uninitialized reads, invalid pointer use, aliasing
# violations (Stacked Borrows) and leaks in the code they run. The core is
# `forbid(unsafe_code)`; the C ABI crate and the core's dependencies
# (zeroize, embedded-io) are not.
#
#   bash tests/miri.sh                      # what CI runs: everything
#   MIRI_JOBS=1 MIRI_NICE=19 bash tests/miri.sh
#   MIRI_TESTS="lib session" bash tests/miri.sh     # only these targets
#                                 (ffi, lib: the --lib tests; else suites)
#   MIRI_LOG_DIR=/tmp/miri MIRI_TEST_ARGS="-Zunstable-options --report-time" \
#       bash tests/miri.sh            # keep the logs; per-test (virtual) times
#
# Slow tests run a Miri-sized input under `cfg(miri)` instead of being
# skipped (exhaustive loops sample their range, 1 KiB session arenas, short
# simulated spans, one model case per subject, a case or two of proptest).
# What is reduced or skipped and why, and the measured times, are in
# RELIABILITY.md ("Miri").
#
# Two groups of about the same length, each in a target directory of its
# own (Miri builds share nothing with normal ones, and the outer `cargo
# test` keeps its lock on target/): `unit` (the unit tests of both crates
# and the parser-level integration suites) and `sessions` (the suites that
# drive whole sessions). With MIRI_JOBS=2 (the default under CI=true on two
# or more cores) they run at the same time. Each test target is its own
# `cargo miri test` run, timed. Isolation stays on (no host clock,
# environment or files: runs are deterministic); a host operation a test
# attempts (proptest's regression file) fails with an error instead of
# aborting the run.
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
export FEATURES=embedded-io,embedded-io-async
if [ -n "${MIRI_LOG_DIR:-}" ]; then
    LOGS=$MIRI_LOG_DIR
    mkdir -p "$LOGS"
    rm -f "$LOGS"/*.times
else
    LOGS=$(mktemp -d)
fi
export LOGS

# The core's integration suites: the ones that drive whole sessions (the
# longest) form the `sessions` group, the rest go with the unit tests.
# A suite that needs a feature outside $FEATURES (std, log) or is
# `not(miri)` builds to an empty binary and runs no test (RELIABILITY.md
# lists them). New suites land in the `unit` group. `worker` (the fleet
# worker's rules, 88 s) runs with the sessions: in the CI run at 1c9002b the
# unit group took 657 s and the sessions group 507 s.
SESSION_SUITES="model session session_faults simulation worker"
UNIT_SUITES=""
for f in core/tests/*.rs; do
    t=$(basename "$f" .rs)
    case " $SESSION_SUITES " in
        *" $t "*) ;;
        *) UNIT_SUITES="$UNIT_SUITES $t" ;;
    esac
done
if [ -n "${MIRI_TESTS:-}" ]; then
    keep() { for t in $1; do case " $MIRI_TESTS " in *" $t "*) printf ' %s' "$t" ;; esac; done; }
    SESSION_SUITES=$(keep "$SESSION_SUITES")
    UNIT_SUITES=$(keep "$UNIT_SUITES")
fi
export SESSION_SUITES UNIT_SUITES

wanted() { [ -z "${MIRI_TESTS:-}" ] || case " $MIRI_TESTS " in *" $1 "*) true ;; *) false ;; esac; }
# One timed `cargo miri test` run: label, then cargo's arguments.
run_target() {
    local label=$1 t0 rc=0
    shift
    t0=$(date +%s)
    # shellcheck disable=SC2086 # MIRI_TEST_ARGS: the harness's arguments
    cargo +nightly miri test --locked "$@" -- ${MIRI_TEST_ARGS:-} || rc=$?
    echo "$label: $(( $(date +%s) - t0 ))s$([ "$rc" -eq 0 ] || echo " FAILED")" >>"$LOGS/$GROUP.times"
    return "$rc"
}
unit() {
    export CARGO_TARGET_DIR=target/miri/unit
    local failed=0
    if wanted ffi; then
        run_target "ffi --lib" -p fieldauth-ffi --lib || failed=1
    fi
    if wanted lib; then
        run_target "core --lib" -p fieldauth --features "$FEATURES" --lib || failed=1
    fi
    for t in $UNIT_SUITES; do
        run_target "core --test $t" -p fieldauth --features "$FEATURES" --test "$t" || failed=1
    done
    return "$failed"
}
sessions() {
    export CARGO_TARGET_DIR=target/miri/sessions
    local failed=0
    for t in $SESSION_SUITES; do
        run_target "core --test $t" -p fieldauth --features "$FEATURES" --test "$t" || failed=1
    done
    return "$failed"
}
export -f wanted run_target unit sessions

run_group() {
    local name=$1 t0
    t0=$(date +%s)
    if GROUP=$name nice -n "$NICE" bash -c "$name" >"$LOGS/$name.log" 2>&1; then
        echo "$name: passed in $(( $(date +%s) - t0 ))s" >"$LOGS/$name.status"
    else
        echo "$name: FAILED after $(( $(date +%s) - t0 ))s" >"$LOGS/$name.status"
        return 1
    fi
}

if [ -n "${MIRI_TESTS:-}" ]; then
    say "only: $MIRI_TESTS ($JOBS group(s) at a time)"
else
    say "unit: C ABI --lib, core --lib,$UNIT_SUITES; sessions: $SESSION_SUITES ($JOBS group(s) at a time)"
fi
failed=0
if [ "$JOBS" -ge 2 ]; then
    run_group unit & a=$!
    run_group sessions & b=$!
    wait $a || failed=1
    wait $b || failed=1
else
    run_group unit || failed=1
    run_group sessions || failed=1
fi
for g in unit sessions; do
    # The test harness's summaries (one per test binary), any failure, and
    # each target's wall time (build included).
    grep -E '^test result:|^error|panicked|Undefined Behavior|^failures:' "$LOGS/$g.log" | sed "s/^/  $g: /" || true
    sed "s/^/  $g: /" "$LOGS/$g.times" 2>/dev/null || true
    cat "$LOGS/$g.status" 2>/dev/null || true
done
if [ "$failed" -ne 0 ]; then
    for g in unit sessions; do
        if grep -q FAILED "$LOGS/$g.status" 2>/dev/null; then
            echo "---- $g log (last 60 lines) ----"
            tail -60 "$LOGS/$g.log"
        fi
    done
    [ -n "${MIRI_LOG_DIR:-}" ] || rm -rf "$LOGS"
    say "Miri FAILED"
    exit 1
fi
[ -n "${MIRI_LOG_DIR:-}" ] || rm -rf "$LOGS"
say "Miri passed in $(( $(date +%s) - START ))s"
