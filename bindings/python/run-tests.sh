#!/usr/bin/env bash
# The Python binding's tests: builds the package wheel the way users do
# (`pip wheel ./bindings/python`: setup.py's hook runs cargo and bundles
# libfieldauth.so), installs it with the [requests,httpx,redis] extras into a virtual
# environment (target/py-venv, reused), runs the pytest suite and the example,
# then installs the same wheel into a second environment (target/py-venv-wheel)
# with no index and no cargo on PATH and loads the bundled library there.
# Idempotent; run from anywhere.
#
#   bash bindings/python/run-tests.sh [pytest args...]
#   FIELDAUTH_PY_MYPY=0 bash bindings/python/run-tests.sh   # without mypy --strict
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/py-venv"
VENV2="$TARGET/py-venv-wheel"
WHEELS="$TARGET/py-wheel"
PIP=(--quiet --disable-pip-version-check)
# The package must bundle the library cargo builds now, not one named by the caller.
unset FIELDAUTH_LIB

echo "--- building fieldauth-emulator"
cargo build -p fieldauth-emulator --locked --quiet
export FIELDAUTH_EMULATOR="$TARGET/debug/fieldauth-emulator"

echo "--- virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "run-tests.sh: python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
PY="$VENV/bin/python"
# setuptools >= 70.1 for test_packaging's pip build without isolation.
"$PY" -m pip install "${PIP[@]}" pytest "setuptools>=70.1"

echo "--- pip wheel ./bindings/python (cargo build -p fieldauth-ffi --release --locked inside)"
rm -rf "$WHEELS"
"$PY" -m pip wheel "${PIP[@]}" --no-deps -w "$WHEELS" ./bindings/python
WHEEL="$(ls "$WHEELS"/fieldauth-*.whl)"
echo "$(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KB"
# Reinstall the binding every run so the tests use the current source; the
# extras' dependencies are installed once.
"$PY" -m pip install "${PIP[@]}" --force-reinstall --no-deps "$WHEEL"
"$PY" -m pip install "${PIP[@]}" "$WHEEL[requests,httpx,redis]"

echo "--- pytest"
# Run from outside the source tree so `import fieldauth` is the installed package.
(cd "$ROOT/bindings/python/tests" && "$PY" -m pytest -q -p no:cacheprovider "$@" .)

echo "--- example against the emulator"
"$PY" bindings/python/examples/emulator_demo.py >/dev/null

echo "--- the wheel on a machine without Rust: $VENV2, --no-index, no cargo on PATH"
NOCARGO_PATH=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ ! -x "$d/cargo" ] && NOCARGO_PATH="${NOCARGO_PATH:+$NOCARGO_PATH:}$d"
done
[ -x "$VENV2/bin/python" ] || python3 -m venv "$VENV2"
env -i PATH="$NOCARGO_PATH" HOME="${HOME:-/tmp}" "$VENV2/bin/python" -m pip install "${PIP[@]}" \
    --no-index --force-reinstall --no-deps "$WHEEL"
(cd / && env -i PATH="$NOCARGO_PATH" HOME="${HOME:-/tmp}" "$VENV2/bin/python" -c '
import shutil, sys
from pathlib import Path
import fieldauth, fieldauth._lib as lib
assert shutil.which("cargo") is None, "cargo is on PATH"
loaded = Path(lib.lib()._name)
assert loaded == Path(fieldauth.__file__).parent / lib.library_file_name(), loaded
cfg = fieldauth.Config(base_url="http://127.0.0.1:9/autotask", client_id="c", client_secret="s")
with fieldauth.Session(fieldauth.Preset.AUTOTASK, cfg) as s:
    assert s.poll().kind == fieldauth.ActionKind.SEND_TOKEN_REQUEST
print(f"fieldauth {fieldauth.version()} from {loaded} ({loaded.stat().st_size} bytes)")
')

# Type-check the package and the example (FIELDAUTH_PY_MYPY=0 skips it).
if [ "${FIELDAUTH_PY_MYPY:-1}" != 0 ]; then
    echo "--- mypy --strict"
    "$PY" -m pip install "${PIP[@]}" mypy types-requests
    "$PY" -m mypy --strict --cache-dir "$TARGET/py-mypy-cache" \
        bindings/python/src/fieldauth bindings/python/examples/emulator_demo.py
fi
echo "python binding: ok"
