#!/usr/bin/env bash
# oidc-provider for fieldauth's tests (issue #14).
#
#   bash tests/oidc/run.sh install   # npm ci, only when node_modules is missing or stale
#   bash tests/oidc/run.sh [ARGS]    # the same, then: node server.mjs (port on stdout's first line)
#
# "Stale" means node_modules/.package-lock.json (written by npm at the end of
# an install) is missing or older than package-lock.json. core/tests/oidc.rs
# runs the same check itself, so `cargo test` works without this script.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/oidc/run.sh: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi

installed="$dir/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ]; then
    echo "tests/oidc: npm ci (oidc-provider)" >&2
    npm ci --prefix "$dir" --no-audit --no-fund >&2
fi

if [ "${1:-}" = "install" ]; then
    exit 0
fi
exec node "$dir/server.mjs" "$@"
