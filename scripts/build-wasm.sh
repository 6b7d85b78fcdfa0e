#!/usr/bin/env bash
# Builds the npm package into client-wasm/pkg/ and prints its size.
# Installs what it needs first (quick when already there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

ensure_wasm_target
ensure_wasm_bindgen
ensure_node_tools

pkg=client-wasm/pkg
cargo build -p resilient-ws-wasm --target wasm32-unknown-unknown --profile release-wasm --quiet
rm -rf "$pkg"
wasm-bindgen target/wasm32-unknown-unknown/release-wasm/resilient_ws_wasm.wasm \
  --target web --out-dir "$pkg" --no-typescript
# The features Rust's wasm32 target emits by default, which every current browser has.
node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$pkg/resilient_ws_wasm_bg.wasm" -o "$pkg/resilient_ws_wasm_bg.wasm"
cp client-wasm/js/resilient-ws.js client-wasm/js/resilient-ws.d.ts \
  client-wasm/js/package.json client-wasm/js/README.md "$pkg/"

gz() { gzip -9 -c "$@" | wc -c; }
wasm=$(gz "$pkg/resilient_ws_wasm_bg.wasm")
js=$(cat "$pkg/resilient-ws.js" "$pkg/resilient_ws_wasm.js" | gz)
total=$((wasm + js))
printf 'client-wasm/pkg: wasm %d B gzip, JS %d B gzip, total %d B gzip (budget 24000 B)\n' "$wasm" "$js" "$total"
