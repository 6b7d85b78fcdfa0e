#!/usr/bin/env bash
# The browser part of the benchmarks alone (./scripts/bench.sh runs it after the native suites
# and puts it in BENCHMARKS.md): bench/browser/run.mjs, receive throughput of the wasm client vs
# the browser's WebSocket vs reconnecting-websocket in one headless Chromium page against one
# feed-server, and bundle sizes of resilient-ws (as scripts/bundle-size.mjs measures it) vs
# reconnecting-websocket, partysocket, socket.io-client and centrifuge. Takes about a minute
# and a half.
#
#   ./scripts/bench-browser.sh [run.mjs options: --quick, --messages N, ... (--help lists them)]
#
# Prints the tables and writes no file, unless asked: `--out FILE` writes them as a report of
# their own (machine, command, date), `--section FILE` as the section bench.sh adds to
# BENCHMARKS.md.
#
# Builds the package and a release feed-server first, and runs on snapshots of both, so a
# rebuild during the run (by another command) cannot change them; also a copy of the package
# with the wasm's function names kept, for the CPU profile. ./scripts/bench.sh sources this
# file for prepare_browser_bench.
set -euo pipefail

# Installs what the browser benchmark needs, builds it and snapshots it into the directory $1;
# exports FEED_SERVER, PKG_DIR and PKG_NAMED_DIR for run.mjs. Run from the repository root.
prepare_browser_bench() {
  local workdir=$1 dep target_dir
  source scripts/lib/tools.sh

  ensure_node_tools
  # The peers this benchmark bundles and runs (package.json), beyond what ensure_node_tools checks.
  for dep in esbuild reconnecting-websocket partysocket socket.io-client centrifuge; do
    if [ ! -d "node_modules/$dep" ]; then
      npm ci --no-audit --no-fund
      break
    fi
  done
  if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    ensure_chromium
  fi

  ./scripts/build-wasm.sh
  cargo build --release -p resilient-ws-examples --bin feed-server --quiet

  cp -r client-wasm/pkg "$workdir/pkg"
  export PKG_DIR="$workdir/pkg"
  target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  cp "$target_dir/release/feed-server" "$workdir/feed-server"
  export FEED_SERVER="$workdir/feed-server"
  # The same build with the wasm's function names kept, for the CPU profile only.
  wasm-bindgen target/package-wasm/wasm32-unknown-unknown/release-wasm/resilient_ws_wasm.wasm \
    --target web --out-dir "$workdir/pkg-named" --no-typescript --keep-debug
  cp client-wasm/js/resilient-ws.js client-wasm/js/host.js client-wasm/js/package.json "$workdir/pkg-named/"
  export PKG_NAMED_DIR="$workdir/pkg-named"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cd "$(dirname "$0")/.."
  workdir=$(mktemp -d)
  trap 'rm -rf "$workdir"' EXIT
  prepare_browser_bench "$workdir"
  node bench/browser/run.mjs "$@"
fi
