#!/usr/bin/env bash
# Runs the interop suites: the clients (Rust API, rwscat, browser package) against servers
# nobody here wrote, and a true half-open connection made in a network namespace.
#
#   tests/tests/interop_fastapi.rs     FastAPI + uvicorn dashboard feed (pings every 1 s)
#   tests/tests/interop_websockets.rs  Python websockets: server pings, close codes, max_size
#   tests/tests/interop_ws.rs          Node ws: broadcast + resume, terminate(), half-open
#   tests/tests/interop_netns.rs       feed-server in its own netns, veth link taken down
#   tests/browser/interop.suite.mjs    the browser package against the FastAPI feed
#   tests/browser/interop-websockets.suite.mjs  ... against Python websockets (pings, close codes, max_size)
#   tests/browser/interop-ws.suite.mjs          ... against Node ws (terminate(), half-open)
#
# Installs the servers first, idempotently, into the repository's own environment:
# .venv-interop/ (created if missing; pip only when tests/interop/requirements.txt changed)
# and tests/interop/node_modules (npm ci when tests/interop/package-lock.json changed).
#
# Without the INTEROP_* variables this script exports, the Rust interop tests fail and say
# to run it; every one of them is named interop_*, so `cargo test --workspace -- --skip
# interop_` leaves them to this script.
#
# Usage: scripts/test-interop.sh [rust|browser] [-- cargo test filter and options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
source scripts/lib/interop.sh

what=all
case "${1:-}" in
  rust | browser) what=$1; shift ;;
  all) shift ;;
esac
if [ "${1:-}" = "--" ]; then shift; fi

started=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - started))" "$*"; }

step "setup: python servers (.venv-interop), node ws, iproute2"
ensure_interop_python
ensure_interop_node
ensure_iproute2

step "build: feed-server, rwscat"
cargo build -p resilient-ws-examples --bin feed-server --bin rwscat --quiet
# Snapshots, so a rebuild by another command during the run cannot change them.
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
cp "$target_dir/debug/feed-server" "$target_dir/debug/rwscat" "$workdir/"

export INTEROP_PYTHON="$PWD/.venv-interop/bin/python"
export INTEROP_NODE="$(command -v node)"
export INTEROP_NODE_MODULES="$PWD/tests/interop/node_modules"
export INTEROP_RWSCAT="$workdir/rwscat"
export INTEROP_FEED_SERVER="$workdir/feed-server"

status=0
if [ "$what" != browser ]; then
  step "rust suites (Rust API and rwscat)"
  cargo test -p resilient-ws-tests --test interop_fastapi --test interop_websockets \
    --test interop_ws --test interop_netns -- --nocapture "$@" || status=$?
  step "the hub (resilient-ws-server) resumed by a Python websockets client"
  cargo test -p resilient-ws-server --test interop_hub -- --nocapture "$@" || status=$?
fi

if [ "$what" != rust ]; then
  step "browser suites (playwright-core, Debian chromium)"
  ensure_node_tools
  if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    ensure_chromium
  fi
  ./scripts/build-wasm.sh
  cp -r client-wasm/pkg "$workdir/pkg"
  PKG_DIR="$workdir/pkg" FEED_SERVER="$workdir/feed-server" \
    node --test --test-concurrency=1 tests/browser/interop.suite.mjs \
      tests/browser/interop-websockets.suite.mjs tests/browser/interop-ws.suite.mjs || status=$?
fi

step "done (exit $status)"
exit "$status"
