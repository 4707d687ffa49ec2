#!/usr/bin/env bash
# The bench_smoke test: runs every section in --quick mode with the programs of this build, then
# checks that the report is complete and parseable, so benchmarks cannot rot unnoticed. It checks
# the shape of the output, never a figure.
#
#   smoke.sh BUILD_DIR OUT_DIR   (a build tree configured with -DGRACEFULSTOP_BENCH=ON)
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: smoke.sh BUILD_DIR OUT_DIR" >&2; exit 64; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
out=$2
rm -rf "$out"

"$here/run.sh" --quick --build "$build" --out "$out"

problems=0
problem() { echo "bench_smoke: $*" >&2; problems=$((problems + 1)); }

md="$out/BENCHMARKS.md"
csv="$out/results.csv"
[ -s "$md" ] || problem "no BENCHMARKS.md"
[ -s "$csv" ] || problem "no results.csv"

# Every section the scripts define appears, and none reports a failure.
for heading in "## Signal delivery latency" "## Burst accounting" "## Idle cost" "## Header cost"; do
  grep -qF "$heading" "$md" || problem "BENCHMARKS.md lacks '$heading'"
done
grep -q ': failed$' "$md" && problem "BENCHMARKS.md reports a failed section"
# Markdown tables: a header row followed by a separator row.
[ "$(grep -c '^|---' "$md")" -ge 5 ] || problem "BENCHMARKS.md has fewer tables than expected"

# results.csv: the header, seven fields per row, a number (or n/a) as the value, and rows from
# every section.
[ "$(head -n 1 "$csv")" = "section,name,metric,value,unit,baseline,ratio" ] ||
  problem "results.csv has an unexpected header"
bad_rows=$(awk -F, 'NR > 1 && (NF != 7 || $4 !~ /^(-?[0-9]+(\.[0-9]+)?|n\/a)$/)' "$csv")
[ -z "$bad_rows" ] || problem "unparseable rows in results.csv:"$'\n'"$bad_rows"
for section in latency burst idle header-cost binary-size; do
  grep -q "^$section," "$csv" || problem "results.csv has no '$section' rows"
done
# The figures that must be measurable everywhere are numbers, not n/a.
for key in "latency,gracefulstop-signalfd,median" "latency,gracefulstop-self-pipe,median" \
  "burst,gracefulstop-signalfd/rt,reported" "idle,busy-baseline,ns_per_iteration"; do
  grep -qE "^$key,[0-9]" "$csv" || problem "results.csv: no figure for $key"
done

if command -v gnuplot >/dev/null; then
  head -c 200 "$out/latency-cdf.svg" 2>/dev/null | grep -q '<svg\|<?xml' ||
    problem "latency-cdf.svg missing or not SVG"
fi

[ "$problems" -eq 0 ] || exit 1
echo "bench_smoke: report complete ($(($(wc -l <"$csv") - 1)) figures)"
