#!/usr/bin/env bash
# Runs every check and test. Installs what it needs first; quick when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

step() { printf '\n==> %s\n' "$*"; }

step "setup: wasm target, wasm-bindgen-cli, node tools, chromium"
ensure_wasm_target
ensure_wasm_bindgen
ensure_node_tools
ensure_chromium

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy -p resilient-ws-core --lib --all-features --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p resilient-ws-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "client-core builds for the browser"
cargo build -p resilient-ws-core --all-features --target wasm32-unknown-unknown --quiet

step "tests"
# The interop suites need their servers installed: scripts/test-interop.sh runs them below.
cargo test --workspace --all-features -- --skip interop_

step "browser package"
./scripts/build-wasm.sh

step "browser driver tests (wasm-bindgen-test in headless Chromium)"
./scripts/test-wasm.sh

step "browser end-to-end tests (playwright-core, Debian chromium)"
./scripts/test-browser.sh

step "interop: FastAPI/uvicorn, Python websockets, Node ws, a kernel-level half-open link"
./scripts/test-interop.sh
