"""Submissions to a board: refuse runs that would duplicate rows or lose data, and publish runs under the lock.

`run_bench.py --submit` refuses a label or checkpoint that would duplicate rows before anything runs (the model
itself is checked by `benchmark.runner.validation`); `publish` then writes the examples, the entry and the
regenerated reports while holding `<out>/.board.lock`, so concurrent runs each land intact and readers never see
half a file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .entries import (
    KEPT_COMPLETE,
    NEW_CHECKPOINT,
    BoardConflict,
    entry_path,
    label_conflict,
    merge_run,
    read_entries,
    read_entry,
    write_entry,
)
from .examples import examples_relpath, save_examples
from .lock import board_lock
from .report import write_dataset_reports, write_index
from .staging import recover, staged_update
from .universal import save_universal, universal_relpath


class SubmissionError(Exception):
    """A submission refused before anything is written; the message says why (exit code 2)."""


# -- the board checks ---------------------------------------------------------------------------------------------

def _hashes(checkpoints: dict[str, Any]) -> dict[str, str]:
    return {role: c["sha256"] for role, c in checkpoints.items()}


def check_board(out: Path, dataset: str, label: str, checkpoints: dict[str, Any], suite: str, complete: bool,
                replace: bool = False) -> None:
    """Refuse a submission that would duplicate rows or throw away a better run (SubmissionError).

    - the same checkpoint under another label: resubmit under that label instead;
    - the label taken by another checkpoint: choose another label;
    - a partial run over a complete run of the same suite and checkpoint.
    A resubmission of the same checkpoint under its label replaces its rows.
    """
    mine = _hashes(checkpoints)
    for e in read_entries(out, dataset):
        same = _hashes(e["checkpoints"]) == mine
        if e["model"] == label:
            if not same and not replace:
                sha = e["checkpoints"].get("mim", next(iter(e["checkpoints"].values()), {})).get("sha256", "?")
                raise SubmissionError(f"'{label}' is already on the {dataset} board with another checkpoint "
                                      f"(sha256 {sha[:12]}...); choose another --name, or pass --replace to "
                                      f"replace that entry")
            run = e["runs"].get(suite)
            if run is not None and run["complete"] and not complete:
                raise SubmissionError(f"'{label}' already has a complete '{suite}' run of this checkpoint; a partial "
                                      f"run (--n-examples) would not replace it")
        elif same:
            raise SubmissionError(f"this checkpoint is already on the {dataset} board as '{e['model']}'; resubmit "
                                  f"with --name {e['model']} to replace its rows")


# -- publishing ---------------------------------------------------------------------------------------------------

def check_label(out: Path, dataset: str, label: str, checkpoints: dict[str, Any], replace: bool = False) -> None:
    """Refuse (SubmissionError), before any work, a run whose entry would replace another checkpoint's entry
    without `replace`, or share its file with another label."""
    path = entry_path(out, dataset, label)
    if path.exists():
        conflict = label_conflict(read_entry(path), label, checkpoints, replace)
        if conflict:
            raise SubmissionError(conflict)


def publish(out: Path, dataset: str, label: str, base: dict[str, Any], suite: str, run: dict[str, Any],
            examples: Optional[dict[str, Any]] = None, submit: bool = False,
            replace: bool = False, universal: Optional[dict[str, Any]] = None) -> tuple[Path, str, dict[str, Path]]:
    """Write a run's examples, its universal perturbations (`universal`: {'perturbations': {row label: C x H x W},
    'settings': {...}}) and its entry and regenerate the dataset's reports, all under the board lock.

    Returns (entry path, status of `entries.merge_run`, report paths). With `submit`, the board checks run again
    under the lock (the board may have changed while the run went on) and raise SubmissionError; so does a label
    whose entry holds another checkpoint, unless `replace`.
    """
    out = Path(out)
    with board_lock(out):
        recover(out)
        if submit:
            check_board(out, dataset, label, base["checkpoints"], suite, run["complete"], replace=replace)
        path = entry_path(out, dataset, label)
        existing = read_entry(path) if path.exists() else None
        try:
            _, status = merge_run(existing, label, dataset, base, suite, run, replace=replace)
        except BoardConflict as exc:
            raise SubmissionError(str(exc)) from None
        if status == KEPT_COMPLETE:
            return path, status, {}
        with staged_update(out, dataset) as stage:   # the entry, its examples and every report, or nothing
            variant = "universal" if universal is not None else ""
            ex_file = stage / dataset / examples_relpath(label, variant)
            if status == NEW_CHECKPOINT:   # the old checkpoint's pictures and perturbations must not stand for it
                for stale in (examples_relpath(label), examples_relpath(label, "universal"),
                              universal_relpath(label)):
                    if (stage / dataset / stale).exists():
                        (stage / dataset / stale).unlink()
            if examples is not None:
                save_examples(ex_file, examples)
                run = {**run, "examples": {"file": examples_relpath(label, variant), **examples["meta"],
                                           "sample_ids": [int(i) for i in examples["sample_ids"]]}}
            if universal is not None:
                save_universal(stage / dataset / universal_relpath(label), universal["perturbations"],
                               universal["settings"])
                run = {**run, "universal": {"file": universal_relpath(label), **universal["settings"],
                                            "perturbations": sorted(universal["perturbations"])}}
            _, status = write_entry(stage, dataset, label, base, suite, run, replace=replace)
            staged = write_dataset_reports(stage, dataset)
        paths = {name: out / dataset / Path(p).relative_to(stage / dataset) for name, p in staged.items()}
        paths["../index.html"] = write_index(out)   # the cross-dataset summary, from the board as it now is
        return path, status, paths
