#!/usr/bin/env bash
# Runs every check and test. Installs what it needs first; quick when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup: wasm32-unknown-unknown target"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "client-core builds for the browser"
cargo build -p resilient-ws-core --all-features --target wasm32-unknown-unknown --quiet

step "tests"
cargo test --workspace --all-features
