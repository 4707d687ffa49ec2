#!/usr/bin/env bash
# tests/bench/run.sh section for the DHCP benchmarks (the section contract is in
# tests/bench/README.md). A section script in tests/bench/sections/ hands over to this one:
#
#     # bench-targets: gracefulstop-dhcpd gsdhcp_bench_probe gsdhcp_bench_leases
#     exec bash "$BENCH_ROOT/tests/bench/dhcp/section.sh"
#
# It runs run.sh into $BENCH_RAW/dhcp and turns its report into the section's part: dhcp.md one
# heading level down, and dhcp.csv as `section,name,metric,value,unit,baseline,ratio` rows where
# gracefulstop-dhcpd's figures have the best peer of the same run as their baseline.
set -uo pipefail
: "${BENCH_SECTION:?} ${BENCH_ROOT:?} ${BENCH_BUILD:?} ${BENCH_PARTS:?} ${BENCH_RAW:?}"

raw=$BENCH_RAW/dhcp
part=$BENCH_PARTS/$BENCH_SECTION
args=(--out "$raw" --build "$BENCH_BUILD")
[[ ${BENCH_QUICK:-0} == 1 ]] && args+=(--quick)

bash "$BENCH_ROOT/tests/bench/dhcp/run.sh" "${args[@]}"
status=$?

if ((status == 77)); then
  # Not a failure of the benchmark: this machine cannot make network namespaces.
  printf '## DHCP servers side by side\n\nNot measured: needs root and network namespaces (tests/bench/dhcp/run.sh).\n' >"$part.md"
  exit 0
fi
if [[ ! -f $raw/dhcp.md ]]; then
  echo "section $BENCH_SECTION: run.sh wrote no report (status $status)" >&2
  exit 1
fi

sed 's/^#/##/' "$raw/dhcp.md" >"$part.md"

# Baselines: per test and parameter, the best peer (highest throughput, lowest time).
awk -F, -v section="$BENCH_SECTION" '
  NR == 1 { next }
  { key = $1 "," $3; value[$2, key] = $4; unit[key] = $5; keys[key] = 1
    if ($2 != "ours" && $4 != "") {
      # Membership first: merely reading best[key] would create it.
      if (!(key in best)) best[key] = $4
      else if ($1 == "throughput" ? $4 + 0 > best[key] + 0 : $4 + 0 < best[key] + 0) best[key] = $4
    }
    rows[++n] = $0 }
  END {
    for (i = 1; i <= n; i++) {
      split(rows[i], c, ",")
      key = c[1] "," c[3]; base = ""; ratio = ""
      if (c[2] == "ours" && (c[1] == "throughput" || c[1] == "restart") && (key in best) && best[key] + 0 != 0) {
        base = best[key]; ratio = sprintf("%.3f", c[4] / best[key])
      }
      name = c[2] == "ours" ? "gracefulstop-dhcpd" : c[2] == "isc" ? "isc-dhcpd" : "kea"
      printf "%s,%s,%s.%s,%s,%s,%s,%s\n", section, name, c[1], c[3], (c[4] == "" ? "n/a" : c[4]), c[5], base, ratio
    }
  }' "$raw/dhcp.csv" >"$part.csv"

exit "$status"
