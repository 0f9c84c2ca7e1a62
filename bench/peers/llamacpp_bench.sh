#!/usr/bin/env bash
# flas beside llama.cpp on this machine, in one run: llama.cpp's llama-bench and flas's bench_gemma2 on
# the same models with the same thread count, one right after the other, reported as ratios (flas speed
# / llama.cpp speed) beside the floors bench_gemma2 measures in the same run. Nothing remembered from
# another machine. Models: the bundled chat model in bf16 and f32 (converted by `flas export-gguf`) and
# random weights with Gemma-2-2B shapes in bf16 and f32 (random_gemma2_gguf writes the very weights
# bench_gemma2 builds). Work: prefill of 128 tokens; decode (llama-bench's tg at depth D) at depths 0,
# 128 and 512 for the bundled model, 128 for the 2B shapes.
#   bash bench/peers/llamacpp_bench.sh [tiny|2b|all]     (default all; THREADS=2, FLAS_BUILD=build)
# The 2B GGUF files (5.2 and 10.5 GB) go to FLAS_PEERS_DIR (default /var/tmp/flas-peers), made once.
set -euo pipefail
cd "$(dirname "$0")/../.."
which=${1:-all}
threads=${THREADS:-2}
build=${FLAS_BUILD:-build}
peers=${FLAS_PEERS_DIR:-/var/tmp/flas-peers}
for t in bench_gemma2 random_gemma2_gguf; do
  [ -x "$build/bench/$t" ] || { echo "llamacpp_bench: $build/bench/$t not built (cmake --build $build --target $t)" >&2; exit 2; }
done
[ -x "$build/examples/flas_cli/flas" ] || { echo "llamacpp_bench: $build/examples/flas_cli/flas not built" >&2; exit 2; }
llama=$(bash bench/peers/llamacpp.sh build | tail -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$peers"

llama_bench() {  # NAME GGUF REPS EXTRA...: prefill 128, then decode windows at the given depths
  local name=$1 gguf=$2 reps=$3; shift 3
  "$llama/llama-bench" -m "$gguf" -t "$threads" -r "$reps" -o json "$@" 2>/dev/null > "$out/llama-$name.json"
}
flas_bench() {  # NAME FILTER
  OMP_NUM_THREADS=$threads "$build/bench/bench_gemma2" --benchmark_filter="$2" --benchmark_format=json \
    2>/dev/null > "$out/flas-$1.json"
}

echo "# $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc --all) cores, $threads threads, $(date -u +%F), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "$which" = tiny ] || [ "$which" = all ]; then
  for dt in bf16 f32; do
    gguf=$peers/tiny-gemma2-chat-$dt.gguf
    "$build/examples/flas_cli/flas" export-gguf --model models/tiny-gemma2-chat --out "$gguf" --dtype $dt >/dev/null
    echo "[llamacpp_bench] bundled model, $dt" >&2
    llama_bench "tiny_$dt" "$gguf" 5 -p 128 -n 32 -d 0,128,512
    flas_bench "tiny_$dt" "BM_tiny_.*_$dt"
  done
fi
if [ "$which" = 2b ] || [ "$which" = all ]; then
  for dt in bf16 f32; do
    gguf=$peers/random-gemma2-2b-shapes-$dt.gguf
    [ -f "$gguf" ] || "$build/bench/random_gemma2_gguf" "$gguf" $dt >/dev/null
    echo "[llamacpp_bench] Gemma-2-2B shapes, $dt (minutes)" >&2
    llama_bench "2b_$dt" "$gguf" 2 -p 128 -n 16 -d 0,128  # prefill at depth 0, decode at 128
    flas_bench "2b_$dt" "BM_2b_.*_$dt"
  done
fi
node bench/peers/llamacpp_compare.mjs "$out"
