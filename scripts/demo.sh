#!/usr/bin/env bash
# The main demo: the bundled chat model answers a prompt unsteered, then steered towards a concept by
# the shipped FLAS flow (trained with `flas train`, see docs/training.md). Arguments override the
# prompt, the concept and the flow time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target flas_cli
prompt="${1:-Write a short poem about the city.}"
concept="${2:-scientific terms related to research findings and their implications}"
flowtime="${3:-2.0}"
echo "== flas steer (models/tiny-gemma2-chat, flow models/tiny-gemma2-chat-flow) =="
./build/examples/flas_cli/flas steer --model models/tiny-gemma2-chat \
  --flow models/tiny-gemma2-chat-flow/flow.safetensors \
  --concept "$concept" --flowtime "$flowtime" --prompt "$prompt" --max-new-tokens 60 --compare
