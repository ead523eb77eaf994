#!/usr/bin/env bash
# Fill the committed board with the threat suites beyond white-box (transfer, universal, corruptions) for every
# shipped model of zoo/weights/, on the whole Fashion-MNIST test set (complete entries). Resumable: a killed run
# continues from its store when started again. Usage: scripts/threat_board.sh [SUITE ...]   (default: all three)
# Cost per model on one busy CPU core (docs/THREATS.md): transfer 4-5 h, universal ~15 min, corruptions 1-2 h.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(transfer universal corruptions)
for suite in "${suites[@]}"; do
  for dir in zoo/weights/*/; do
    model=$(basename "$dir")
    echo "== $model $suite"
    OMP_NUM_THREADS=${THREADS:-1} $PY run_bench.py --model "$model" --suite "$suite" --n-examples 10000 --no-progress
  done
done
$PY -m benchmark.report --readme README.md
