#!/usr/bin/env bash
# The whole test suite (README.md's test command). Installs what it needs on Debian bookworm
# (root), then builds and tests with g++ (benchmarks built and smoke-run), clang++, ASan+UBSan
# and TSan, each through its CMake workflow preset. `tests/run-all.sh dev` runs one preset.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
.ci/install-deps || exit 1

presets=(ci clang asan tsan)
[ $# -gt 0 ] && presets=("$@")

log=$(mktemp)
trap 'rm -f "$log"' EXIT
total_passed=0 total_failed=0 broken=()
for preset in "${presets[@]}"; do
  echo "== workflow: $preset"
  start=$SECONDS
  cmake --workflow --preset "$preset" --fresh 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # ctest's summary: "100% tests passed, 0 tests failed out of 97"
  summary=$(grep -E '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [ -n "$summary" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
    total_passed=$((total_passed + total - failed))
    total_failed=$((total_failed + failed))
  fi
  if [ "$rc" -ne 0 ]; then
    broken+=("$preset")
    echo "== workflow $preset FAILED after $((SECONDS - start)) s"
  else
    echo "== workflow $preset passed in $((SECONDS - start)) s"
  fi
done

((${#broken[@]})) && echo "failed workflows: ${broken[*]}"
echo "tests: $total_passed passed, $total_failed failed"
((${#broken[@]} == 0))
