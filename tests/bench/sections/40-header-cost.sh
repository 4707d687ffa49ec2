#!/usr/bin/env bash
# Header cost: compile time of a translation unit that includes <gracefulstop/stop.hpp>, next to
# an empty one and one that includes <boost/asio/signal_set.hpp> (g++ -O2, median of 5, the three
# interleaved so drift hits them alike); and the stripped size of a minimal gracefulstop program
# next to minimal C programs.
# BENCH_CXX / BENCH_CC override the compilers (default g++ / gcc).
set -euo pipefail

src="$BENCH_ROOT/tests/bench/header_cost"
cxx=${BENCH_CXX:-$(command -v g++ || command -v c++)}
cc=${BENCH_CC:-$(command -v gcc || command -v cc)}
reps=5
[ "$BENCH_QUICK" = 1 ] && reps=1
work=$(mktemp -d "${TMPDIR:-/tmp}/gs-bench-header.XXXXXX")
trap 'rm -rf "$work"' EXIT
md="$BENCH_PARTS/$BENCH_SECTION.md"
csv="$BENCH_PARTS/$BENCH_SECTION.csv"
cxxflags=(-std=c++17 -O2 -I "$BENCH_ROOT/include")

have_asio=1
"$cxx" "${cxxflags[@]}" -E "$src/include_asio.cpp" -o /dev/null 2>/dev/null || have_asio=0

# The smoke pass only checks that everything still compiles and reports; its figures mean
# nothing, so it runs the compilers side by side. A full run runs one at a time.
pids=()
job() {
  if [ "$BENCH_QUICK" = 1 ]; then
    "$@" &
    pids+=($!)
  else
    "$@"
  fi
}
join_jobs() {
  for pid in "${pids[@]}"; do wait "$pid"; done
  pids=()
}

# The system and standard headers gracefulstop itself includes, and nothing of its own: the part
# of its cost that comes from what it includes rather than from its own code.
# Only the gracefulstop headers that <gracefulstop/stop.hpp> really pulls in count (per -M).
"$cxx" "${cxxflags[@]}" -M "$src/include_gracefulstop.cpp" | tr -s ' \\' '\n' |
  grep '/include/gracefulstop/' | sort -u >"$work/gracefulstop_headers"
xargs grep -hoE '^#include <[^>]+>' <"$work/gracefulstop_headers" | grep -v '<gracefulstop/' |
  sort -u >"$work/std_of_gracefulstop.cpp"

# Wall time of one compile, in nanoseconds (what a user waits for, process start included).
compile_ns() {
  local t0 t1
  t0=$(date +%s%N)
  "$cxx" "${cxxflags[@]}" -c "$1" -o "$2"
  t1=$(date +%s%N)
  echo $((t1 - t0))
}
# Appends the compile time of FILE to the list NAME.
compile_into() { compile_ns "$2" "$work/$1.o" >>"$work/$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

tus=("empty $src/empty.cpp" "gs $src/include_gracefulstop.cpp" "std $work/std_of_gracefulstop.cpp"
  "prelude $src/prelude_only.cpp" "prelude_gs $src/prelude_gracefulstop.cpp")
if [ "$have_asio" = 1 ]; then tus+=("asio $src/include_asio.cpp"); fi
for _ in $(seq "$reps"); do
  for tu in "${tus[@]}"; do
    read -r name file <<<"$tu"
    job compile_into "$name" "$file"
  done
  join_jobs
done
empty_ns=$(median <"$work/empty")
gs_ns=$(median <"$work/gs")
std_ns=$(median <"$work/std")
prelude_ns=$(median <"$work/prelude")
prelude_gs_ns=$(median <"$work/prelude_gs")
gs_added=$((gs_ns - empty_ns))
if [ "$have_asio" = 1 ]; then
  asio_ns=$(median <"$work/asio")
  asio_added=$((asio_ns - empty_ns))
fi

# "met" when a < b.
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0) ? "met" : "missed" }'; }
added_target=$(verdict "$gs_added" 300000000)

# ---- binary size ----
size_of() { stat -c %s "$1"; }
build_stripped() { "$@" && strip "${@: -1}"; } # the output file comes last
job build_stripped "$cc" -O2 "$src/min_empty.c" -o "$work/min_empty"
job build_stripped "$cc" -O2 "$src/min_self_pipe.c" -o "$work/min_self_pipe"
job build_stripped "$cxx" "${cxxflags[@]}" -pthread "$src/min_gracefulstop.cpp" -o "$work/min_gracefulstop"
if [ "$have_asio" = 1 ]; then
  job build_stripped "$cxx" "${cxxflags[@]}" -pthread "$src/min_asio.cpp" -o "$work/min_asio"
fi
join_jobs
size_empty=$(size_of "$work/min_empty")
size_c=$(size_of "$work/min_self_pipe")
size_gs=$(size_of "$work/min_gracefulstop")
if [ "$have_asio" = 1 ]; then size_asio=$(size_of "$work/min_asio"); fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

{
  echo "## Header cost"
  echo
  echo "Wall time of \`$(basename "$cxx") ${cxxflags[*]//$BENCH_ROOT\//} -c\` on a translation unit"
  echo "that only includes the header, median of $reps (all of them interleaved); \`$("$cxx" --version | head -n 1)\`."
  echo
  echo "| Translation unit | Median compile s | Added over the empty TU, s |"
  echo "|---|---:|---:|"
  echo "| empty | $(seconds "$empty_ns") | — |"
  echo "| \`#include <gracefulstop/stop.hpp>\` | $(seconds "$gs_ns") | $(seconds "$gs_added") |"
  if [ "$have_asio" = 1 ]; then
    echo "| \`#include <boost/asio/signal_set.hpp>\` | $(seconds "$asio_ns") | $(seconds "$asio_added") |"
  else
    echo "| \`#include <boost/asio/signal_set.hpp>\` | n/a (Boost not found) | |"
  fi
  echo
  echo "Where it comes from, and what it adds in practice (same run, same medians):"
  echo
  echo "| Translation unit | Median compile s | Added, s |"
  echo "|---|---:|---:|"
  echo "| only the $(wc -l <"$work/std_of_gracefulstop.cpp") system and standard headers that gracefulstop includes | $(seconds "$std_ns") | $(seconds $((std_ns - empty_ns))) over empty |"
  echo "| \`<gracefulstop/stop.hpp>\` | $(seconds "$gs_ns") | $(seconds $((gs_ns - std_ns))) over those headers: gracefulstop's own code |"
  echo "| a typical daemon TU: \`<string> <vector> <memory> <functional> <chrono> <thread> <mutex> <cstdio>\` | $(seconds "$prelude_ns") | — |"
  echo "| the same TU with \`<gracefulstop/stop.hpp>\` | $(seconds "$prelude_gs_ns") | $(seconds $((prelude_gs_ns - prelude_ns))) over the daemon TU |"
  echo
  echo "Targets:"
  echo
  echo "- gracefulstop adds under 0.3 s: $(seconds "$gs_added") s — **$added_target**."
  if [ "$have_asio" = 1 ]; then
    echo "- gracefulstop adds under a fifth of what Asio adds: $(ratio "$gs_added" "$asio_added") of it — **$(verdict $((gs_added * 5)) "$asio_added")**."
  else
    echo "- gracefulstop adds under a fifth of what Asio adds: not measured (Boost not found)."
  fi
  echo
  echo "Stripped size of a minimal program (\`-O2\`, dynamically linked against libc and"
  echo "libstdc++ like a normal build; the size is the executable's own):"
  echo
  echo "| Program | Bytes | vs the C self-pipe program |"
  echo "|---|---:|---:|"
  echo "| C, empty \`main\` | $size_empty | $(ratio "$size_empty" "$size_c")× |"
  echo "| C, SIGTERM/SIGINT by hand: self-pipe + \`poll()\` (the same job) | $size_c | 1.00× |"
  echo "| gracefulstop: \`stop_controller\` + \`poll_loop\` + \`exit_process()\` | $size_gs | $(ratio "$size_gs" "$size_c")× |"
  if [ "$have_asio" = 1 ]; then
    echo "| Boost.Asio: \`signal_set\` on an \`io_context\` | $size_asio | $(ratio "$size_asio" "$size_c")× |"
  fi
  echo
} >"$md"

{
  echo "header-cost,empty-tu,compile_s,$(seconds "$empty_ns"),s,,"
  echo "header-cost,gracefulstop-stop.hpp,compile_s,$(seconds "$gs_ns"),s,empty-tu,$(ratio "$gs_ns" "$empty_ns")"
  echo "header-cost,gracefulstop-stop.hpp,added_compile_s,$(seconds "$gs_added"),s,,"
  if [ "$have_asio" = 1 ]; then
    echo "header-cost,asio-signal_set.hpp,compile_s,$(seconds "$asio_ns"),s,empty-tu,$(ratio "$asio_ns" "$empty_ns")"
    echo "header-cost,asio-signal_set.hpp,added_compile_s,$(seconds "$asio_added"),s,,"
    echo "header-cost,gracefulstop-stop.hpp,added_vs_asio_added,$(ratio "$gs_added" "$asio_added"),ratio,asio-signal_set.hpp,$(verdict $((gs_added * 5)) "$asio_added")"
  fi
  echo "header-cost,std-headers-of-gracefulstop,compile_s,$(seconds "$std_ns"),s,empty-tu,$(ratio "$std_ns" "$empty_ns")"
  echo "header-cost,daemon-tu,compile_s,$(seconds "$prelude_ns"),s,,"
  echo "header-cost,daemon-tu-with-gracefulstop,compile_s,$(seconds "$prelude_gs_ns"),s,daemon-tu,$(ratio "$prelude_gs_ns" "$prelude_ns")"
  echo "header-cost,gracefulstop-stop.hpp,added_under_0.3s,$(seconds "$gs_added"),s,,$added_target"
  echo "binary-size,c-empty-main,stripped_bytes,$size_empty,bytes,c-self-pipe,$(ratio "$size_empty" "$size_c")"
  echo "binary-size,c-self-pipe,stripped_bytes,$size_c,bytes,,"
  echo "binary-size,gracefulstop-minimal,stripped_bytes,$size_gs,bytes,c-self-pipe,$(ratio "$size_gs" "$size_c")"
  if [ "$have_asio" = 1 ]; then
    echo "binary-size,asio-minimal,stripped_bytes,$size_asio,bytes,c-self-pipe,$(ratio "$size_asio" "$size_c")"
  fi
} >"$csv"

echo "bench=header-cost empty_s=$(seconds "$empty_ns") gracefulstop_s=$(seconds "$gs_ns") added_s=$(seconds "$gs_added")${asio_ns:+ asio_s=$(seconds "$asio_ns") asio_added_s=$(seconds "$asio_added")}"
echo "bench=binary-size c_empty=$size_empty c_self_pipe=$size_c gracefulstop=$size_gs${size_asio:+ asio=$size_asio}"
