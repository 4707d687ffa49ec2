#!/usr/bin/env bash
# Signal delivery latency (gs_bench_latency) and its CDF plot.
# BENCH_LATENCY_SAMPLES overrides the number of samples of a full run (default 20000).
set -euo pipefail

args=(--md "$BENCH_PARTS/$BENCH_SECTION.md" --csv "$BENCH_PARTS/$BENCH_SECTION.csv"
  --cdf-dir "$BENCH_RAW")
if [ "$BENCH_QUICK" = 1 ]; then
  args+=(--quick)
else
  args+=(--samples "${BENCH_LATENCY_SAMPLES:-20000}")
fi
"$BENCH_BIN/gs_bench_latency" "${args[@]}"

if ! command -v gnuplot >/dev/null; then
  printf '(No CDF plot: gnuplot is not installed.)\n\n' >>"$BENCH_PARTS/$BENCH_SECTION.md"
  exit 0
fi

# One curve per mechanism, in table order; gracefulstop bold, floors dashed.
plot=""
for mech in raw-signalfd gracefulstop-signalfd sd-event raw-self-pipe gracefulstop-self-pipe \
  asio libuv libevent; do
  data="$BENCH_RAW/latency-$mech.dat"
  [ -e "$data" ] || continue
  case "$mech" in
  gracefulstop-*) style="lw 3" ;;
  raw-*) style="lw 1.5 dt 2" ;;
  *) style="lw 1.5" ;;
  esac
  plot+="${plot:+, }'$data' using 1:2 with lines $style title '$mech'"
done
[ -n "$plot" ] || { echo "no latency data to plot" >&2; exit 1; }

gnuplot <<GNUPLOT
set terminal svg size 960,600 dynamic font "sans,13"
set output "$BENCH_OUT/latency-cdf.svg"
set title "Signal delivery latency: kill() in another process to the loop's callback"
set xlabel "latency, microseconds (log scale)"
set ylabel "fraction of signals delivered within"
set logscale x
set yrange [0:1]
set grid xtics ytics mxtics
set key right bottom
plot $plot
GNUPLOT
printf '![Latency CDF: fraction of signals delivered within a given time](latency-cdf.svg)\n\n' \
  >>"$BENCH_PARTS/$BENCH_SECTION.md"
