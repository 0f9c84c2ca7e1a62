#!/usr/bin/env bash
# `--precision exact|bf16` through the real program on the bundled bf16 model: the default is exact and
# reproduces HF's greedy reply (greedy_samples.json, made by HF transformers) text for text; bf16 is
# taken and reported; anything else is refused with the option named.
#   precision_option.sh FLAS_BINARY MODELS_DIR
set -euo pipefail
flas=$1
model=$2/tiny-gemma2-chat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sample() { node -e 'const s = require(process.argv[1])[0]; process.stdout.write(String(s[process.argv[2]]))' \
  "$model/greedy_samples.json" "$1"; }
prompt=$(sample instruction)
n=$(node -e 'process.stdout.write(String(require(process.argv[1])[0].ids.length))' "$model/greedy_samples.json")
sample greedy > "$tmp/want"
echo >> "$tmp/want"  # generate ends its reply with a newline
fail() { echo "FAIL: $*" >&2; exit 1; }

# Streaming prints each piece as it comes: the first keeps SentencePiece's word-start space, which HF's
# decode() drops.
reply() { sed '1s/^ //'; }
"$flas" generate --model "$model" --prompt "$prompt" --max-new-tokens "$n" 2> "$tmp/default.err" | reply > "$tmp/default"
cmp -s "$tmp/want" "$tmp/default" || { diff "$tmp/want" "$tmp/default" >&2 || true; fail "the default precision does not reproduce HF's greedy reply"; }
grep -q "precision exact" "$tmp/default.err" || fail "the default is not reported as exact: $(cat "$tmp/default.err")"

"$flas" generate --model "$model" --prompt "$prompt" --max-new-tokens "$n" --precision exact 2>/dev/null | reply > "$tmp/exact"
cmp -s "$tmp/want" "$tmp/exact" || fail "--precision exact does not reproduce HF's greedy reply"

"$flas" generate --model "$model" --prompt "$prompt" --max-new-tokens "$n" --precision bf16 > "$tmp/bf16" 2> "$tmp/bf16.err"
grep -q "precision bf16" "$tmp/bf16.err" || fail "--precision bf16 is not in effect: $(cat "$tmp/bf16.err")"
[ -s "$tmp/bf16" ] || fail "--precision bf16 generated nothing"

if "$flas" generate --model "$model" --prompt "$prompt" --precision fp8 > /dev/null 2> "$tmp/bad.err"; then
  fail "--precision fp8 was accepted"
fi
grep -q -- "--precision" "$tmp/bad.err" || fail "the refusal does not name --precision: $(cat "$tmp/bad.err")"
echo "precision option: default and exact reproduce HF's reply, bf16 runs, fp8 refused"
