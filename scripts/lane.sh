#!/usr/bin/env bash
# Run (MODEL, SUITE) pairs one after another on one CPU thread, from the repository this script lives in (a
# worktree pinned at one commit runs that commit's code, so commits on main cannot change a run half-way).
# pgd/standard runs are submitted (--submit: whole test set, entry published); the threat suites run on the whole
# test set (--n-examples 10000). A killed run resumes from its store (MIMBENCH_HOME) when started again.
# Logs: $LOGS/<model>.<suite>.log, a start/end line per run in $LOGS/progress.txt (default LOGS=runs/board).
# NPROC=K runs each pair under `torchrun --standalone --nproc_per_node K` (K one-thread processes sharding the
# batches, same records and tables as one process; use it only when K cores are free).
# Usage: scripts/lane.sh [--after PID] [--out DIR] MODEL SUITE [MODEL SUITE ...]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=${LOGS:-runs/board}
NPROC=${NPROC:-1}
launch=($PY)
[ "$NPROC" -gt 1 ] && launch=($PY -m torch.distributed.run --standalone --nproc_per_node "$NPROC")  # = torchrun
out=()
while [ $# -gt 0 ]; do
  case $1 in
    --after) while kill -0 "$2" 2>/dev/null; do sleep 20; done; shift 2;;
    --out) out=(--out "$2"); shift 2;;
    *) break;;
  esac
done
if [ $# -eq 0 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: scripts/lane.sh [--after PID] [--out DIR] MODEL SUITE [MODEL SUITE ...]" >&2; exit 2
fi
mkdir -p "$LOGS"
status=0
while [ $# -ge 2 ]; do
  model=$1; suite=$2; shift 2; start=$(date +%s)
  case $suite in pgd|standard) extra=(--submit --name "$model");; *) extra=(--n-examples 10000);; esac
  echo "$(date +%FT%T) start $model $suite" >> "$LOGS/progress.txt"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "${launch[@]}" run_bench.py --model "$model" --suite "$suite" "${extra[@]}" "${out[@]}" \
    --threads 1 --no-progress > "$LOGS/$model.$suite.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=$rc
  echo "$(date +%FT%T) end $model $suite rc=$rc $(( $(date +%s) - start ))s" >> "$LOGS/progress.txt"
done
exit $status
