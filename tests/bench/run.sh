#!/usr/bin/env bash
# Builds the benchmarks and runs every section, then writes BENCHMARKS.md, results.csv and
# latency-cdf.svg into the output folder.
#
#   tests/bench/run.sh [--quick] [--out DIR] [--build DIR] [--section NAME]...
#
#   --quick         smoke pass: every benchmark with small counts, a few seconds in all
#   --out DIR       output folder (default: bench-out/ at the top of the source tree)
#   --build DIR     use this build tree, already built with -DGRACEFULSTOP_BENCH=ON, instead of
#                   configuring and building build-bench/
#   --section NAME  run only the sections whose file name contains NAME (repeatable)
#
# Sections are the scripts in tests/bench/sections/, run in file-name order. Adding a benchmark
# means adding one script there; see tests/bench/README.md for what a section receives and must
# write, and for its "# bench-targets:" line naming the CMake targets it needs built. The report
# is assembled from whatever the sections wrote, so a section that fails is reported as failed
# and the others still appear; the exit status is then non-zero.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

quick=0
out=""
build=""
sections=()
invocation="tests/bench/run.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) quick=1 ;;
  --out)
    [ $# -ge 2 ] || { echo "error: --out needs a folder" >&2; exit 64; }
    out=$2
    shift
    ;;
  --build)
    [ $# -ge 2 ] || { echo "error: --build needs a folder" >&2; exit 64; }
    build=$2
    shift
    ;;
  --section)
    [ $# -ge 2 ] || { echo "error: --section needs a name" >&2; exit 64; }
    sections+=("$2")
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "error: unknown argument '$1'" >&2
    usage >&2
    exit 64
    ;;
  esac
  shift
done

out=${out:-$root/bench-out}
invocation=${invocation//"$root/"/} # the report names no machine paths
mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---- sections to run, and what they need built ---------------------------------------------------
selected=()
for script in "$here"/sections/*.sh; do
  [ -e "$script" ] || continue
  name=$(basename "$script" .sh)
  if [ ${#sections[@]} -gt 0 ]; then
    wanted=0
    for s in "${sections[@]}"; do [[ "$name" == *"$s"* ]] && wanted=1; done
    [ "$wanted" = 1 ] || continue
  fi
  selected+=("$script")
done
[ ${#selected[@]} -gt 0 ] || { echo "error: no section matches '${sections[*]}'" >&2; exit 64; }
# A section names the CMake targets it needs on a "# bench-targets: a b" line.
targets=(gs_bench_latency gs_bench_burst gs_bench_idle)
for script in "${selected[@]}"; do
  read -r -a extra <<<"$(sed -n 's/^# bench-targets:[[:space:]]*//p' "$script" | tr '\n' ' ')"
  targets+=("${extra[@]}")
done

# ---- build ----------------------------------------------------------------------------------------
if [ -z "$build" ]; then
  build="$root/build-bench"
  # Examples are configured only when a section needs one of their targets, so the benchmarks do
  # not depend on every example building.
  examples=OFF
  if [ ${#targets[@]} -gt 3 ]; then examples=ON; fi
  echo "== building the benchmarks in build-bench/ (Release): ${targets[*]}"
  cmake -S "$root" -B "$build" -DGRACEFULSTOP_BENCH=ON -DCMAKE_BUILD_TYPE=Release \
    -DGRACEFULSTOP_BUILD_TESTS=OFF -DGRACEFULSTOP_BUILD_EXAMPLES=$examples >"$out/build.log" 2>&1 ||
    { cat "$out/build.log" >&2; exit 1; }
  cmake --build "$build" -j2 --target "${targets[@]}" >>"$out/build.log" 2>&1 ||
    { tail -50 "$out/build.log" >&2; exit 1; }
fi
[ -d "$build/tests/bench" ] ||
  { echo "error: '$build' is not a build tree configured with -DGRACEFULSTOP_BENCH=ON" >&2; exit 1; }
build=$(cd "$build" && pwd)
bin="$build/tests/bench"

# ---- machine facts ----------------------------------------------------------------------------------
first_line() { "$@" 2>/dev/null | head -n 1 || true; }
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
started_s=$(date +%s)

# ---- sections -----------------------------------------------------------------------------------
parts="$out/parts"
raw="$out/raw"
logs="$out/logs"
rm -rf "$parts" "$raw" "$logs"
mkdir -p "$parts" "$raw" "$logs"
rm -f "$out/BENCHMARKS.md" "$out/results.csv" "$out/latency-cdf.svg"

export BENCH_ROOT="$root" BENCH_BUILD="$build" BENCH_BIN="$bin" BENCH_OUT="$out" BENCH_PARTS="$parts" BENCH_RAW="$raw"
export BENCH_QUICK="$quick"

failed=()
for script in "${selected[@]}"; do
  name=$(basename "$script" .sh)
  echo "== $name"
  if BENCH_SECTION="$name" bash "$script" 2>&1 | tee "$logs/$name.log"; then
    [ -s "$parts/$name.md" ] || {
      echo "section $name wrote no $name.md" | tee -a "$logs/$name.log"
      failed+=("$name")
    }
  else
    failed+=("$name")
  fi
  if [[ " ${failed[*]-} " == *" $name "* ]]; then
    {
      echo "## $name: failed"
      echo
      echo "The section did not complete; the last lines of its output:"
      echo
      echo '```'
      tail -n 20 "$logs/$name.log" | sed "s|$root/||g"
      echo '```'
      echo
    } >>"$parts/$name.md"
  fi
done

# ---- report ---------------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - started_s))
boost_version=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp \
  2>/dev/null | tr _ . || true)
lib_versions=""
for pc in libuv libevent libsystemd; do
  v=$(pkg-config --modversion "$pc" 2>/dev/null || true)
  [ -n "$v" ] && lib_versions+="${lib_versions:+, }$pc $v"
done
[ -n "$boost_version" ] && lib_versions+="${lib_versions:+, }Boost $boost_version"

{
  echo "# gracefulstop benchmarks"
  echo
  echo "Produced by \`$invocation\` (from the top of the source tree), $started, in ${elapsed} s."
  [ "$quick" = 1 ] && echo && echo "**Quick (smoke) pass: sample counts are too small for the figures to mean much.**"
  echo
  echo "| Machine | |"
  echo "|---|---|"
  echo "| CPUs (nproc) | $(nproc) |"
  echo "| CPU | ${cpu_model:-unknown} |"
  echo "| Kernel | $(uname -sr) |"
  echo "| C++ compiler | $(first_line g++ --version) |"
  command -v clang++ >/dev/null && echo "| Also installed | $(first_line clang++ --version) |"
  echo "| CMake | $(first_line cmake --version) |"
  echo "| Compared libraries | ${lib_versions:-none found} |"
  echo "| gracefulstop | $(sed -n 's/^#define GRACEFULSTOP_VERSION_STRING "\(.*\)"/\1/p' "$root/include/gracefulstop/version.hpp") ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git')) |"
  echo "| Load average (1, 5, 15 min) | before: $load_before; after: $load_after |"
  echo
  echo "The machine is shared: other work runs on the same CPUs, so absolute times drift from run"
  echo "to run and the tails (p99, max) mostly show the benchmark waiting for a CPU. Every"
  echo "comparison is therefore made within one run, as a ratio to a baseline measured in the same"
  echo "run, interleaved with it where possible. Benchmarks print figures; nothing here passes or"
  echo "fails on a figure, and the targets below are reported as met or missed."
  echo
  for part in "$parts"/*.md; do
    [ -e "$part" ] || continue
    cat "$part"
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "**Failed sections:** ${failed[*]}"
    echo
  fi
} >"$out/BENCHMARKS.md"

{
  echo "section,name,metric,value,unit,baseline,ratio"
  for part in "$parts"/*.csv; do
    [ -e "$part" ] || continue
    cat "$part"
  done
} >"$out/results.csv"

echo "== wrote $out/BENCHMARKS.md, $out/results.csv$([ -e "$out/latency-cdf.svg" ] && echo ", $out/latency-cdf.svg")"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== failed sections: ${failed[*]}" >&2
  exit 1
fi
