#!/usr/bin/env bash
# Builds the npm package into client-wasm/pkg/ and prints its size.
# Installs what it needs first (quick when already there).
#
# The size is what a page downloads: the .wasm after wasm-opt, and the package's JS
# (resilient-ws.js, host.js and wasm-bindgen's glue) bundled and minified by esbuild, as a
# bundler ships it; both gzip -9. The budget test (tests/browser/size.test.mjs) measures
# the same way, with bundle-size.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

ensure_wasm_target
ensure_wasm_bindgen
ensure_node_tools
ensure_package_toolchain

pkg=client-wasm/pkg
target_dir=target/package-wasm
# Without the crate's `std` feature, with core and alloc rebuilt so that a panic traps at
# once: no panic message, location or formatting code is linked (and no Debug bodies or
# caller locations, which nothing in the package prints).
RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
  cargo "+$PACKAGE_TOOLCHAIN" build -p resilient-ws-wasm --target wasm32-unknown-unknown \
  --profile release-wasm --no-default-features -Zbuild-std=core,alloc \
  --target-dir "$target_dir" --quiet
rm -rf "$pkg"
wasm-bindgen "$target_dir/wasm32-unknown-unknown/release-wasm/resilient_ws_wasm.wasm" \
  --target web --out-dir "$pkg" --no-typescript
# The features Rust's wasm32 target emits by default, which every current browser has.
node_modules/.bin/wasm-opt -Oz --converge --strip-debug --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$pkg/resilient_ws_wasm_bg.wasm" -o "$pkg/resilient_ws_wasm_bg.wasm"
cp client-wasm/js/resilient-ws.js client-wasm/js/host.js client-wasm/js/resilient-ws.d.ts \
  client-wasm/js/package.json client-wasm/js/README.md "$pkg/"

node scripts/bundle-size.mjs "$pkg"
