#!/usr/bin/env bash
# Idle cost (gs_bench_idle): system calls, allocations and time per loop iteration with no signal.
set -euo pipefail

args=(--md "$BENCH_PARTS/$BENCH_SECTION.md" --csv "$BENCH_PARTS/$BENCH_SECTION.csv"
  --tmp "$BENCH_RAW")
[ "$BENCH_QUICK" = 1 ] && args+=(--quick)
"$BENCH_BIN/gs_bench_idle" "${args[@]}"
