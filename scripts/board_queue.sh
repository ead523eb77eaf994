#!/usr/bin/env bash
# Complete the committed board: run every (model, suite) that `python -m benchmark.report --missing` lists for the
# models shipped in zoo/weights/ (default suites: pgd and standard), JOBS at a time, one thread each, then regenerate
# the boards and the README block. Resumable: a killed run continues from its store (MIMBENCH_HOME) when started
# again, and a finished one is no longer listed. Logs: runs/board/<model>.<suite>.log, one line per job in
# runs/board/progress.txt. Usage: JOBS=2 scripts/board_queue.sh [SUITE ...]
# Cost on one busy core (docs/RANKING.md): standard ~105 min (55 min alone on both idle cores), pgd ~48 min per model.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=runs/board
mkdir -p "$LOGS"
export PY LOGS
$PY -m benchmark.report --missing "$@" | xargs -r -P "${JOBS:-2}" -L 1 bash -c '
  model=$0; suite=$1; start=$(date +%s)
  echo "$(date +%FT%T) start $model $suite" >> "$LOGS/progress.txt"
  if OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY run_bench.py --model "$model" --name "$model" --suite "$suite" \
       --submit --no-progress > "$LOGS/$model.$suite.log" 2>&1; then rc=0; else rc=$?; fi
  echo "$(date +%FT%T) end $model $suite rc=$rc $(( $(date +%s) - start ))s" >> "$LOGS/progress.txt"'
$PY -m benchmark.report --readme README.md
echo "still missing:"; $PY -m benchmark.report --missing "$@"
