#!/usr/bin/env bash
# Benchmarks `flas serve` on the bundled model: aggregate tokens/s and time to first token at 1, 4 and
# 16 concurrent streams, all unsteered vs all steered with different concepts.
#   bash bench/serve_bench.sh [FLAS_BINARY] [extra flas serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/examples/flas_cli/flas}"; shift || true
port_file=$(mktemp)
"$bin" serve --model models/tiny-gemma2-chat --flow models/tiny-gemma2-chat-flow --host 127.0.0.1 --port 0 \
    --max-batch 16 --max-queue 64 --ctx 512 "$@" 2> >(tee "$port_file" >&2) &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[0-9.:]*' "$port_file" | head -1 || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "flas serve did not start" >&2; exit 1; }
echo "# $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc --all) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); flas serve --max-batch 16 --ctx 512 $*"
node bench/serve_bench.mjs "$url" "${LEVELS:-1,4,16}" "${REQUESTS_PER_STREAM:-4}" "${MAX_TOKENS:-64}"
