#!/usr/bin/env bash
# Burst accounting (gs_bench_burst): 1,000 signals, then a done marker.
set -euo pipefail

args=(--md "$BENCH_PARTS/$BENCH_SECTION.md" --csv "$BENCH_PARTS/$BENCH_SECTION.csv")
[ "$BENCH_QUICK" = 1 ] && args+=(--quick)
"$BENCH_BIN/gs_bench_burst" "${args[@]}"
