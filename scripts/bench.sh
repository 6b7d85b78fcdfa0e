#!/usr/bin/env bash
# Runs every benchmark (release build) and writes BENCHMARKS.md at the repository root.
# Extra arguments go to the benchmark program, e.g. `--quick` or `--only receive,memory`.
# The figures depend on the machine and on what else runs on it: run it on a quiet one.
set -euo pipefail
cd "$(dirname "$0")/.."

# The memory and storm suites hold 10,000 connections in one process: raise the soft
# open-files limit to the hard one (they scale down, and say so, if it stays lower).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
printf '==> open files limit: %s\n' "$(ulimit -n)"

cargo build --release -p resilient-ws-bench
exec cargo run --release -q -p resilient-ws-bench -- --out BENCHMARKS.md "$@"
