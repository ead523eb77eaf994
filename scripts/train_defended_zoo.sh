#!/usr/bin/env bash
# Train defended variants of the embedded default into zoo/weights/<recipe>/ one after another.
# Usage: scripts/train_defended_zoo.sh RECIPE [RECIPE ...]   (about 30-60 min each on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for recipe in "$@"; do
  echo "== $recipe"
  $PY -m zoo.train --recipe "$recipe" --out "zoo/weights/$recipe" --resume --threads "${THREADS:-1}"
done
