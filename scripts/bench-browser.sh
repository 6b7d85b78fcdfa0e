#!/usr/bin/env bash
# Browser benchmarks (bench/browser/run.mjs): receive throughput of the wasm client vs the
# browser's WebSocket vs reconnecting-websocket in one headless Chromium page against one
# feed-server, and bundle sizes (esbuild, minified, gzip -9) of resilient-ws vs
# reconnecting-websocket, partysocket, socket.io-client and centrifuge. Prints the tables and
# writes BENCHMARKS-browser.md (or --out FILE). Takes about a minute and a half.
#
# Builds the package and a release feed-server first, and runs on snapshots of both, so a
# rebuild during the run (by another command) cannot change them; also a copy of the package
# with the wasm's function names kept, for the CPU profile. Arguments go to run.mjs (--help
# lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
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

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
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

node bench/browser/run.mjs "$@"
