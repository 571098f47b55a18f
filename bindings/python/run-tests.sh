#!/usr/bin/env bash
# The Python binding's tests: builds libfieldauth.so and the emulator, installs
# the package into a virtual environment (target/py-venv, reused), runs the
# pytest suite and the example once. Idempotent; run from anywhere.
#
#   bash bindings/python/run-tests.sh [pytest args...]
#   FIELDAUTH_PY_MYPY=0 bash bindings/python/run-tests.sh   # without mypy --strict
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/py-venv"

echo "--- building libfieldauth.so and fieldauth-emulator"
cargo build -p fieldauth-ffi --release --locked --quiet
cargo build -p fieldauth-emulator --locked --quiet
export FIELDAUTH_LIB="$TARGET/release/libfieldauth.so"
export FIELDAUTH_EMULATOR="$TARGET/debug/fieldauth-emulator"
test -f "$FIELDAUTH_LIB" || { echo "run-tests.sh: $FIELDAUTH_LIB was not built" >&2; exit 1; }

echo "--- virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "run-tests.sh: python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
PY="$VENV/bin/python"
# Reinstall the binding every run so the tests use the current source.
"$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./bindings/python
"$PY" -m pip install --quiet --disable-pip-version-check pytest

echo "--- pytest"
# Run from outside the source tree so `import fieldauth` is the installed package.
(cd "$ROOT/bindings/python/tests" && "$PY" -m pytest -q -p no:cacheprovider "$@" .)

echo "--- example against the emulator"
"$PY" bindings/python/examples/emulator_demo.py >/dev/null

# Type-check the package and the example (FIELDAUTH_PY_MYPY=0 skips it).
if [ "${FIELDAUTH_PY_MYPY:-1}" != 0 ]; then
    echo "--- mypy --strict"
    "$PY" -m pip install --quiet --disable-pip-version-check mypy
    "$PY" -m mypy --strict --cache-dir "$TARGET/py-mypy-cache" \
        bindings/python/src/fieldauth bindings/python/examples/emulator_demo.py
fi
echo "python binding: ok"
