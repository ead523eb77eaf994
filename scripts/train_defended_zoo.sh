#!/usr/bin/env bash
# Train defended variants of the embedded default one after another, resuming where a killed run stopped.
# Usage: scripts/train_defended_zoo.sh RECIPE [RECIPE ...]
#   OUT_ROOT=DIR     where each variant's trainer folder goes (default zoo/weights; a folder per recipe)
#   MIM_FROM=1       skip the MIM stage: fine-tune from the shipped variant's own MIM weights (zoo/weights/RECIPE),
#                    which are shipped unchanged (a new fine-tuning for the existing zoo, docs/DEFENDED_ZOO.md)
#   THREADS=N        torch threads per run (default 1)
#   TRAIN_ARGS="..." more options for python -m zoo.train (e.g. --amp bf16)
# Each run logs to OUT_ROOT/RECIPE.log. About 1-3 h per variant on one CPU thread at the recipe's schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT_ROOT=${OUT_ROOT:-zoo/weights}
mkdir -p "$OUT_ROOT"
for recipe in "$@"; do
  echo "== $recipe ($(date +%FT%T))"
  extra=()
  if [ "${MIM_FROM:-0}" = 1 ]; then extra+=(--mim-from "$recipe"); fi
  # shellcheck disable=SC2086
  $PY -m zoo.train --recipe "$recipe" --out "$OUT_ROOT/$recipe" --resume --threads "${THREADS:-1}" \
      "${extra[@]}" ${TRAIN_ARGS:-} > "$OUT_ROOT/$recipe.log" 2>&1
  echo "== $recipe done ($(date +%FT%T))"
done
