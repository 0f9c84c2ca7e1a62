#!/usr/bin/env bash
# The test suite built with g++ -fsanitize=address,undefined into build-asan/ and run through ctest.
# Any sanitizer report fails the run: UBSan does not recover (-fno-sanitize-recover=undefined) and
# ASan aborts on its first error.
#
#   bash scripts/sanitize.sh            # every test
#   bash scripts/sanitize.sh --fast     # the fast part (what CI runs): the readers, I/O, trainer resume
#   bash scripts/sanitize.sh -R REGEX   # any ctest selection
#
set -euo pipefail
cd "$(dirname "$0")/.."
# --fast (what CI runs): every reader of outside files (test_reliability replays the fuzz findings and
# seeds through them), safetensors/config/tokenizer I/O, flow checkpoints and the trainer's resume:
# nothing of the model-sized numerics and no CLI, whose sanitizer build alone takes ~15 minutes on 2 cores.
fast_tests='^(test_io|test_trainer|test_flow_checkpoint|test_reliability)$'
selection=()
build_targets=()
case "${1:-}" in
  --fast) selection=(-R "$fast_tests")
          build_targets=(--target test_io test_trainer test_flow_checkpoint test_reliability) ;;
  -R) selection=(-R "$2") ;;
  "") ;;
  *) echo "usage: $0 [--fast | -R REGEX]" >&2; exit 2 ;;
esac

bash scripts/deps.sh
start=$(date +%s)
sanitize_flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1"
# Benchmarks read no outside input and only lengthen the build; CUDA code is not built with host
# sanitizers. The CLI stays: the kill tests drive it.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DFLAS_NATIVE=ON -DFLAS_BUILD_BENCH=OFF \
  -DFLAS_WITH_CUDA=OFF -DCMAKE_CXX_FLAGS="$sanitize_flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan -j"${FLAS_JOBS:-$(nproc)}" "${build_targets[@]}"
echo "== sanitize: build took $(( $(date +%s) - start )) s =="

# halt_on_error: the first report fails the test. Leaks are reported too (LeakSanitizer is part of ASan).
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
t=$(date +%s)
cd build-asan
# Sanitizer-built code is 2-5x slower: a longer per-test timeout than scripts/test.sh's.
ctest --output-on-failure -j"${FLAS_JOBS:-$(nproc)}" --timeout 1800 "${selection[@]}"
echo "== sanitize: tests took $(( $(date +%s) - t )) s, total $(( $(date +%s) - start )) s =="
