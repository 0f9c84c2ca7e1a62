#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ (clang-15, ASan + UBSan) into build-fuzz/ and runs each for
# SECONDS (default 20) from its committed seeds (fuzz/corpus/<target>) and kept crashers
# (fuzz/regressions/<target>). Fails when any target finds a crash, a leak, a timeout or an
# out-of-memory input; the input is left in build-fuzz/artifacts/.
#
#   bash scripts/fuzz.sh [SECONDS]
#   FLAS_FUZZ_PARALLEL=2 bash scripts/fuzz.sh 600   # two targets at a time (the long run)
#   FLAS_FUZZ_TARGETS="fuzz_safetensors fuzz_axbench" bash scripts/fuzz.sh 60
#   FLAS_FUZZ_RUNS=1000000 FLAS_FUZZ_PARALLEL=2 bash scripts/fuzz.sh 600   # stop a target at 1M executions
#
# New inputs go to build-fuzz/corpus/<target> (not the committed seeds, which stay small).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
parallel=${FLAS_FUZZ_PARALLEL:-1}

# libFuzzer ships with clang in Debian 12 as clang-15 + libfuzzer-15-dev (installed only when missing);
# Ninja builds the targets in parallel (make builds a list of targets one after another).
bash scripts/deps.sh
missing=()
for p in clang-15 libfuzzer-15-dev ninja-build; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[fuzz] installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

start=$(date +%s)
CXX=clang++-15 cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE= >/dev/null
targets=${FLAS_FUZZ_TARGETS:-$(cd fuzz/targets && ls fuzz_*.cpp | sed 's/\.cpp$//')}
# shellcheck disable=SC2086
cmake --build build-fuzz -j"${FLAS_JOBS:-$(nproc)}" --target $targets
echo "== fuzz: build took $(( $(date +%s) - start )) s =="

mkdir -p build-fuzz/logs build-fuzz/artifacts
run_target() {
  local t=$1 seconds=$2
  local dict=fuzz/dict/${t#fuzz_}.dict
  mkdir -p "build-fuzz/corpus/$t"
  local dirs=("build-fuzz/corpus/$t" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
              -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  [ -n "${FLAS_FUZZ_RUNS:-}" ] && args+=(-runs="$FLAS_FUZZ_RUNS")
  if "build-fuzz/$t" "${args[@]}" "${dirs[@]}" > "build-fuzz/logs/$t.log" 2>&1; then
    status=ok
  else
    status=FAILED
  fi
  # libFuzzer's final line (#N DONE cov: C ft: F corp: ...) and its executed-units count.
  local done_line execs
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "build-fuzz/logs/$t.log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/logs/$t.log" | tail -1)
  printf '%-24s %-6s execs %-10s %s\n' "$t" "$status" "${execs:-?}" "$(echo "${done_line}" | sed 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*//')"
  if [ "$status" != ok ]; then
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error|flas fuzz:' "build-fuzz/logs/$t.log" | head -20 >&2
    return 1
  fi
}
export -f run_target

t=$(date +%s)
echo "== fuzz: each target for ${seconds} s, ${parallel} at a time (logs in build-fuzz/logs) =="
# shellcheck disable=SC2086
if printf '%s\n' $targets | xargs -P "$parallel" -I{} bash -c 'run_target "$@"' _ {} "$seconds"; then
  echo "== fuzz: no findings; runs took $(( $(date +%s) - t )) s, total $(( $(date +%s) - start )) s =="
else
  echo "== fuzz: FINDINGS (inputs in build-fuzz/artifacts/, logs in build-fuzz/logs/) ==" >&2
  exit 1
fi
