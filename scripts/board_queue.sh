#!/usr/bin/env bash
# Complete the committed board: run every (model, suite) that `python -m benchmark.report --missing` lists for the
# models shipped in zoo/weights/ (default suites: pgd and standard), JOBS at a time, one thread each
# (scripts/lane.sh), then regenerate the boards and the README block. Resumable: a killed run continues from its
# store (MIMBENCH_HOME) when started again, and a finished one is no longer listed. Logs: runs/board/.
# Usage: JOBS=2 scripts/board_queue.sh [SUITE ...]
# Cost on one busy core (docs/RANKING.md): standard ~105 min (55 min alone on both idle cores), pgd ~48 min per model.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PY
$PY -m benchmark.report --missing "$@" | xargs -r -P "${JOBS:-2}" -L 1 scripts/lane.sh || true
$PY -m benchmark.report --readme README.md
echo "still missing:"; $PY -m benchmark.report --missing "$@"
