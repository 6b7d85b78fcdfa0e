#!/usr/bin/env bash
# Runs the browser end-to-end tests (tests/browser/*.test.mjs, node:test + playwright-core)
# in headless Chromium: a test page importing the built package (client-wasm/pkg/) against
# the reference feed server, which each test starts itself on a free port of 127.0.0.1
# (serving the page at / and the package at /pkg) and stops at the end.
#
# Builds the package and the feed server first. Arguments go to `node --test`: options
# (e.g. --test-name-pattern=offline) and/or test files; with no files, all of tests/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

ensure_node_tools
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  ensure_chromium
fi

./scripts/build-wasm.sh
cargo build -p resilient-ws-examples --bin feed-server --quiet
# The tests use snapshots of the package and the server, so a rebuild during the run (by
# another command) cannot change or remove them.
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
cp -r client-wasm/pkg "$workdir/pkg"
export PKG_DIR="$workdir/pkg"

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
cp "$target_dir/debug/feed-server" "$workdir/feed-server"
export FEED_SERVER="$workdir/feed-server"

files=()
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  set -- "$@" tests/browser/
fi

# node --test exits non-zero when a test fails (tests marked `todo` report but do not fail).
# Every test is bounded: one that hangs fails after 3 minutes (the longest file takes ~25 s).
status=0
node --test --test-timeout=180000 "$@" || status=$?
exit "$status"
