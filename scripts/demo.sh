#!/usr/bin/env bash
# The main demo: the bundled chat model answers a prompt unsteered, then steered towards a concept by
# the shipped FLAS flow (trained with `flas train`, see docs/training.md) at the flow's default T (its
# JSON; chosen with `flas eval`, docs/evaluation.md). Beside each reply: the offline concept score of
# `flas eval` (a tf-idf classifier trained on the concept's AxBench rows). Arguments override the prompt,
# the concept and the flow time.
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own build folder with only what the demo runs (the CLI on the CPU backend; no tests, benchmarks,
# Kokkos or MPI), so that a fresh machine shows it in a few minutes; scripts/test.sh builds ./build.
bash scripts/deps.sh --demo
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DFLAS_NATIVE=ON -DFLAS_BUILD_TESTS=OFF -DFLAS_BUILD_BENCH=OFF \
  -DFLAS_WITH_CUDA=OFF -DFLAS_WITH_MPI=OFF -DFLAS_CLI_BACKENDS=cpu >/dev/null
cmake --build build-demo -j"$(nproc)" --target flas_cli
prompt="${1:-How did US states get their names?}"
concept="${2:-scientific terms related to research findings and their implications}"
extra=()
[ -n "${3:-}" ] && extra+=(--flowtime "$3")
data=(data/axbench/concept10_prod_2b_l20_v1_train.jsonl data/axbench/concept10_prod_2b_l20_v1_latent_eval.jsonl
      data/axbench/conceptFD_prod_2b_l20_v1_train.jsonl data/axbench/conceptFD_prod_2b_l20_v1_latent_eval.jsonl)
# The concept score needs the concept's labelled rows; other concepts steer without it.
if grep -qF "\"output_concept\": $(printf '%s' "$concept" | sed 's/["\\]/\\&/g; s/^/"/; s/$/"/')" "${data[@]}"; then
  extra+=(--score-with "${data[@]}")
fi
echo "== flas steer (models/tiny-gemma2-chat, flow models/tiny-gemma2-chat-flow) =="
./build-demo/examples/flas_cli/flas steer --model models/tiny-gemma2-chat \
  --flow models/tiny-gemma2-chat-flow/flow.safetensors \
  --concept "$concept" --prompt "$prompt" --max-new-tokens 60 --compare "${extra[@]}"
