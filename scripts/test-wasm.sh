#!/usr/bin/env bash
# Runs the browser driver's tests (client-wasm/tests) in headless Chromium against the
# reference feed server on 127.0.0.1. Extra arguments go to `cargo test`.
#
# How the pieces fit: .cargo/config.toml makes wasm-bindgen-test-runner the runner for
# wasm32; it starts $CHROMEDRIVER and reads Chromium's capabilities (binary, flags) from
# client-wasm/webdriver.json; the feed server's URL reaches the tests at build time as
# FEED_URL (option_env!).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

ensure_wasm_target
ensure_wasm_bindgen
ensure_chromium

export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="${WASM_BINDGEN_TEST_WEBDRIVER_JSON:-$PWD/client-wasm/webdriver.json}"
# The runner's limit for a whole test binary (default 20 s); every test has its own bounds.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"

# Build first, so the server starts only when the tests are ready to run against it.
cargo build -p resilient-ws-examples --bin feed-server --quiet
cargo test -p resilient-ws-wasm --target wasm32-unknown-unknown --no-run --quiet "$@"

workdir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
: >"$workdir/server.out"
"$target_dir/debug/feed-server" --listen 127.0.0.1:0 --rate 100 \
  >"$workdir/server.out" 2>"$workdir/server.err" &
server_pid=$!

# The first stdout line is `listening on ws://127.0.0.1:PORT/feed`.
feed_url=
for _ in $(seq 100); do
  line=$(head -n 1 "$workdir/server.out" || true)
  if [[ "$line" == "listening on "* ]]; then
    feed_url=${line#listening on }
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$feed_url" ]; then
  echo "feed-server did not start:" >&2
  cat "$workdir/server.out" "$workdir/server.err" >&2
  exit 1
fi
echo "feed server: $feed_url"

# A new FEED_URL rebuilds only the test crate (cargo tracks option_env!).
FEED_URL="$feed_url" cargo test -p resilient-ws-wasm --target wasm32-unknown-unknown "$@"
