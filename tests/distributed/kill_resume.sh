#!/usr/bin/env bash
# kill_resume.sh FLAS MPIEXEC SOURCE_DIR — `mpirun -np 2 flas train` killed with SIGKILL (every process
# of the job) once a training state past step 10 is committed, then relaunched with --resume, must end
# with the very flow an uninterrupted `mpirun -np 2` run writes (byte for byte: same ranks, same order
# of every sum, and the state holds parameters, AdamW moments, data order and the flow-time RNG).
set -euo pipefail
flas=$1 mpiexec=$2 src=$3
work=$(mktemp -d /tmp/flas_kill_resume.XXXXXX)
trap 'pkill -KILL -f -- "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
args=(train --model "$src/models/tiny-gemma2-chat" --data "$src/data/axbench/concept10_prod_2b_l20_v1_train.jsonl"
      --layer 3 --steps 30 --batch-size 4 --lr 1e-3 --warmup 5 --val-every 5 --val-samples 16 --max-len 64
      --held-out-concepts 1 --seed 5)
launch() { "$mpiexec" -np 2 --oversubscribe --allow-run-as-root "$flas" "${args[@]}" "$@"; }

launch --out "$work/whole" > "$work/whole.log" 2>&1 || { cat "$work/whole.log"; exit 1; }

setsid bash -c "$(declare -f launch); $(declare -p mpiexec flas args); launch --out '$work/split'" > "$work/split.log" 2>&1 &
job=$!
step() { sed -n 's/^state-0*\([0-9][0-9]*\)$/\1/p' "$work/split/latest" 2>/dev/null || true; }
for _ in $(seq 1 3000); do
  s=$(step)
  if [ -n "$s" ] && [ "$s" -ge 10 ]; then break; fi
  kill -0 "$job" 2>/dev/null || { echo "the run ended before it could be killed"; cat "$work/split.log"; exit 1; }
  sleep 0.1
done
kill -KILL -- "-$job" 2>/dev/null || true
pkill -KILL -f -- "$work/split" 2>/dev/null || true
wait "$job" 2>/dev/null || true
killed_at=$(step)
echo "killed the 2-rank run after the state of step $killed_at was committed"
[ ! -e "$work/split/flow.safetensors" ] || { echo "the killed run had already finished"; exit 1; }
[ "$killed_at" -lt 30 ] || { echo "the killed run had already reached the last step"; exit 1; }

launch --out "$work/split" --resume > "$work/resume.log" 2>&1 || { cat "$work/resume.log"; exit 1; }
grep -q "resumed from .*state-0*$killed_at" "$work/resume.log" || { echo "the relaunch did not resume"; cat "$work/resume.log"; exit 1; }
if cmp "$work/whole/flow.safetensors" "$work/split/flow.safetensors"; then
  echo "resumed 2-rank run equals the uninterrupted one byte for byte"
else
  echo "the resumed flow differs from the uninterrupted one"; exit 1
fi
