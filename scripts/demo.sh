#!/usr/bin/env bash
# The main demo: the bundled chat model answers a prompt (steering arrives with the flow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target flas_cli
prompt="${1:-Write a short poem about the ocean.}"
echo "== flas generate (models/tiny-gemma2-chat) =="
./build/examples/flas_cli/flas generate --model models/tiny-gemma2-chat --prompt "$prompt" --max-new-tokens 80
