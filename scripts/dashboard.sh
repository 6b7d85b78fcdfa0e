#!/usr/bin/env bash
# Builds the browser package and serves the dashboard with the reference feed server:
# the page (examples/dashboard) at /, the package (client-wasm/pkg) at /pkg, the feed at /feed.
# Usage: ./scripts/dashboard.sh [extra feed-server flags, e.g. --drop-every 50]
# Listens on $DASHBOARD_ADDR (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."

addr="${DASHBOARD_ADDR:-127.0.0.1:8080}"

./scripts/build-wasm.sh
cargo build --release -p resilient-ws-examples --bin feed-server --quiet
echo "open http://${addr}/"
exec cargo run --release --quiet -p resilient-ws-examples --bin feed-server -- \
  --listen "$addr" --rate 5 \
  --static /=examples/dashboard --static /pkg=client-wasm/pkg "$@"
