"""Submissions: check a model before it is benchmarked, and publish runs to the board under a file lock.

`run_bench.py --submit` refuses a model that would give meaningless numbers (non-finite weights, a forward pass
that is not deterministic, zero or non-finite input gradients) and a label or checkpoint that would duplicate
rows, before anything runs; `publish` then writes the examples, the entry and the regenerated reports while
holding `<out>/.board.lock` (filelock), so concurrent runs each land intact and readers never see half a file.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout

from zoo.checkpoints import CheckpointError, check_finite
from zoo.data import ImageDataset

from .results import (KEPT_COMPLETE, NEW_CHECKPOINT, BoardConflict, entry_path, label_conflict, merge_run,
                      read_entries, read_entry, write_entry)
from .suites import DEFAULT_SUITE

LOCK_NAME = ".board.lock"
LOCK_TIMEOUT = 900.0      # seconds a writer waits for another one (regenerating reports takes seconds)
VALIDATION_SAMPLES = 8
_REPEAT_TOL = 1e-5        # two forward passes of a deterministic model agree to float noise


class SubmissionError(Exception):
    """A submission refused before anything is written; the message says why (exit code 2)."""


def standard_suite(dataset: str) -> str:
    """The suite a submission runs when none is named: the one every model of the dataset's board is ranked on."""
    return DEFAULT_SUITE


@contextlib.contextmanager
def board_lock(out: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Serialise writers of one leaderboard folder (entries, examples, reports) across processes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise SubmissionError(f"{out / LOCK_NAME}: another run has been writing this board for over {timeout:.0f} s; "
                              f"try again, or remove the lock file if no mimbench process is running") from None
    try:
        yield
    finally:
        lock.release()


# -- the model checks ---------------------------------------------------------------------------------------------

def _max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (1.0 + b.abs().max()))


def _gradient_check(what: str, grad: Optional[torch.Tensor]) -> float:
    """The smallest per-sample L1 norm of the input gradient; refuse zero or non-finite gradients."""
    if grad is None:
        raise SubmissionError(f"{what}: the loss does not depend on the input (no input gradient); white-box "
                              f"attacks would be meaningless")
    if not torch.isfinite(grad).all():
        raise SubmissionError(f"{what}: non-finite input gradients")
    per_sample = grad.flatten(1).abs().sum(1)
    zero = int((per_sample == 0).sum())
    if zero:
        raise SubmissionError(f"{what}: input gradients are zero for {zero} of {len(per_sample)} samples (gradient "
                              f"masking or a non-differentiable model); white-box attacks would be meaningless")
    return float(per_sample.min())


def validate_model(bundle, data: ImageDataset, targets: list[str], seed: int = 0,
                   device: torch.device | str = "cpu", k: int = VALIDATION_SAMPLES) -> dict[str, Any]:
    """Refuse (SubmissionError) a model whose numbers would mean nothing; returns what was checked, for the entry.

    Strict loading already happened in `zoo.load_model`. Here: every weight finite; two forward passes on the
    first k evaluation images agree; the input gradients of the loss each target's attacks use are finite and
    non-zero for every sample.
    """
    from .attacks.reconstruction import mim_attack_loss
    report: dict[str, Any] = {"samples": min(k, len(data))}
    x = data.images[:k].to(device)
    y = data.labels[:k].to(device)
    ids = data.sample_ids[:k]
    roles = [r for r, t in (("mim", "reconstruction"), ("classifier", "downstream")) if t in targets]
    for role in roles:
        try:
            check_finite(bundle.require(role), source=f"{role} weights")
        except CheckpointError as exc:
            raise SubmissionError(str(exc)) from None
    report["finite_weights"] = True
    if "mim" in roles:
        mim = bundle.mim
        mask = mim.make_mask(ids, seed=seed).to(device)
        with torch.no_grad():
            a, b = mim.forward_mim(x, mask), mim.forward_mim(x, mask)
        first, second = (a.reconstruction, b.reconstruction) if a.reconstruction is not None else (a.pred, b.pred)
        if not torch.isfinite(first).all():
            raise SubmissionError("mim: non-finite outputs on the evaluation images")
        diff = _max_rel_diff(first, second)
        if diff > _REPEAT_TOL:
            raise SubmissionError(f"mim: two forward passes on the same input differ (max relative difference "
                                  f"{diff:.2e}); randomised models need an EoT evaluation this benchmark does not run")
        report["mim_repeat_diff"] = diff
        xg = x.clone().requires_grad_(True)
        tokens = a.pred.argmax(-1) if getattr(mim, "family", "") == "beit" else None
        loss = mim_attack_loss(mim, xg, x, mask, tokens)
        grad = torch.autograd.grad(loss.sum(), xg, allow_unused=True)[0] if loss.requires_grad else None
        report["mim_min_input_grad_l1"] = _gradient_check("mim", grad)
    if "classifier" in roles:
        clf = bundle.classifier
        with torch.no_grad():
            a, b = clf(x), clf(x)
        if not torch.isfinite(a).all():
            raise SubmissionError("classifier: non-finite logits on the evaluation images")
        diff = _max_rel_diff(a, b)
        if diff > _REPEAT_TOL:
            raise SubmissionError(f"classifier: two forward passes on the same input differ (max relative "
                                  f"difference {diff:.2e}); randomised models need an EoT evaluation this "
                                  f"benchmark does not run")
        report["classifier_repeat_diff"] = diff
        xg = x.clone().requires_grad_(True)
        loss = F.cross_entropy(clf(xg), y, reduction="sum")
        grad = torch.autograd.grad(loss, xg, allow_unused=True)[0] if loss.requires_grad else None
        report["classifier_min_input_grad_l1"] = _gradient_check("classifier", grad)
    return report


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
            replace: bool = False) -> tuple[Path, str, dict[str, Path]]:
    """Write a run's examples and entry and regenerate the dataset's reports, all under the board lock.

    Returns (entry path, status of `results.merge_run`, report paths). With `submit`, the board checks run again
    under the lock (the board may have changed while the run went on) and raise SubmissionError; so does a label
    whose entry holds another checkpoint, unless `replace`.
    """
    from .examples import examples_relpath, save_examples
    from .report import write_reports
    out = Path(out)
    with board_lock(out):
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
        ex_file = out / dataset / examples_relpath(label)
        if examples is not None:
            save_examples(ex_file, examples)
            run = {**run, "examples": {"file": examples_relpath(label), **examples["meta"],
                                       "sample_ids": [int(i) for i in examples["sample_ids"]]}}
        elif status == NEW_CHECKPOINT and ex_file.exists():
            ex_file.unlink()  # the old checkpoint's pictures must not stand for the new one
        path, status = write_entry(out, dataset, label, base, suite, run, replace=replace)
        return path, status, write_reports(out, dataset)
