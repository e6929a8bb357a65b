#!/usr/bin/env bash
# Store throughput on one node: SQLite vs PostgreSQL (Debian's postgresql, started in a temp dir), same run.
# BENCH_SECONDS (default 5) per measure, BENCH_CONCURRENCY (default 32) requests in flight. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec node --import tsx test/bench/store.ts
