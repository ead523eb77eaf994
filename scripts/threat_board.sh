#!/usr/bin/env bash
# Fill the committed board with the threat suites beyond white-box (transfer, universal, corruptions) for every
# shipped model of zoo/weights/, on the whole Fashion-MNIST test set (complete entries), one run at a time on one
# thread (scripts/lane.sh; logs in runs/board/). Resumable: a killed run continues from its store when started again.
# Usage: scripts/threat_board.sh [SUITE ...]   (default: all three)
# Cost per model on one busy CPU core (docs/THREATS.md): transfer 4-5 h, universal ~5 min, corruptions ~30-60 min.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PY
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(transfer universal corruptions)
pairs=()
for suite in "${suites[@]}"; do
  for dir in zoo/weights/*/; do pairs+=("$(basename "$dir")" "$suite"); done
done
scripts/lane.sh "${pairs[@]}" || true
$PY -m benchmark.report --readme README.md
