#!/usr/bin/env bash
# Steps per second of `flas train` on the bundled model, one machine: 1 process × 1 thread, 1 process ×
# 2 threads, and mpirun 2 ranks × 1 thread, with the same global batch (so the same parameters).
# Each setting runs twice (S1 and S2 steps); the time per step is the difference over S2 − S1 steps, so
# model loading, concept encoding and the final validation cancel out. Medians of R repeats.
#   bash bench/distributed/train_scaling.sh [S1=10] [S2=50] [R=3]     (after building flas with MPI)
set -euo pipefail
cd "$(dirname "$0")/../.."
S1=${1:-10}; S2=${2:-50}; R=${3:-3}
flas=build/examples/flas_cli/flas
[ -x "$flas" ] || { echo "train_scaling: $flas is missing: build it first (cmake --build build --target flas_cli)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "train_scaling: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
args=(train --model models/tiny-gemma2-chat
      --data data/axbench/concept10_prod_2b_l20_v1_train.jsonl data/axbench/conceptFD_prod_2b_l20_v1_train.jsonl
      --layer 3 --batch-size 8 --lr 1e-3 --warmup 5 --val-every 0 --val-samples 16 --held-out-concepts 3
      --max-len 80 --seed 1)
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OMP_NUM_THREADS=1 -np 2)

seconds() {  # seconds <steps> <launcher...>: wall time of one training run
  local steps=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" "$flas" "${args[@]}" --steps "$steps" --out "$out/run" > "$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  rm -rf "$out/run"
  awk "BEGIN { print $t1 - $t0 }"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A per_step
settings=("1 process x 1 thread" "1 process x 2 threads" "2 ranks x 1 thread")
launch() {
  case "$1" in
    "1 process x 1 thread") echo "env OMP_NUM_THREADS=1" ;;
    "1 process x 2 threads") echo "env OMP_NUM_THREADS=2" ;;
    "2 ranks x 1 thread") echo "${mpi[*]}" ;;
  esac
}
total=$(( ${#settings[@]} * R * 2 )); done_runs=0; start=$(date +%s)
for r in $(seq "$R"); do
  for s in "${settings[@]}"; do  # interleaved: drift hits every setting alike
    read -r -a l <<< "$(launch "$s")"
    a=$(seconds "$S1" "${l[@]}"); b=$(seconds "$S2" "${l[@]}")
    per_step[$s]+="$(awk "BEGIN { print ($b - $a) / ($S2 - $S1) }") "
    done_runs=$((done_runs + 2)); el=$(( $(date +%s) - start ))
    printf '\r[train_scaling] %d/%d runs, %ds elapsed, ETA %ds   ' "$done_runs" "$total" "$el" \
      $(( el * (total - done_runs) / done_runs )) >&2
  done
done
echo >&2
base=$(tr ' ' '\n' <<< "${per_step["1 process x 1 thread"]}" | grep . | median)
echo "| setting (global batch 8, bundled model, layer 3) | ms per step | steps/s | speed vs 1 × 1 |"
echo "|---|---|---|---|"
for s in "${settings[@]}"; do
  m=$(tr ' ' '\n' <<< "${per_step[$s]}" | grep . | median)
  awk -v s="$s" -v m="$m" -v b="$base" 'BEGIN { printf "| %s | %.1f | %.2f | %.2f |\n", s, m * 1000, 1 / m, b / m }'
done
