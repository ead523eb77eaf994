"""`python -m benchmark.ranking_check --model NAME`: is the board's worst case as strong as AutoAttack-standard?

Runs pyautoattack's AutoAttack, version 'standard' (APGD-CE, APGD-T with 9 targets, FAB-T with 9 targets, Square
with 5000 queries), directly on the first n samples of the evaluation set at every Linf budget of the model's
committed `standard` entry, and compares per sample with the entry's worst case: `missed` counts samples the
board calls robust that AutoAttack breaks, `extra` the reverse. The board's number is no higher than
AutoAttack's when missed <= extra, up to the comparison's noise (both attacks are randomised). AutoAttack's four
attacks are run one after another on the survivors of the ones before, exactly as its own standard evaluation
does (same order, batches and seed), so each break is attributed to the attack that made it: the table says which
part of AutoAttack found the samples the board missed. Prints a table; `--json FILE` keeps it (docs/RANKING.md
shows it for the shipped zoo). With `--json`, each finished (budget, attack) stage is also kept in `FILE.partial`,
so an interrupted check resumes where it stopped (a defended model's check takes hours on a CPU).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .leaderboard.entries import EntryError, entry_path, read_entry
from .leaderboard.outcomes import decoded
from .suites import RANKED_SUITE, row_label

AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


Stage = Callable[[int, np.ndarray, np.ndarray], None]


def _autoattack(model, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int, batch_size: int,
                done: Optional[tuple[int, np.ndarray, np.ndarray]] = None, on_stage: Optional[Stage] = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """AutoAttack-standard on (x, y), all correctly classified: (robust flags, index into AA_STANDARD of the
    attack that broke each sample, -1 where none did). The attacks run one by one on the survivors, the way
    `run_standard_evaluation` runs them, so the final flags are those of one standard call. `done` = (stages
    finished, their robust flags, their broken_by) resumes after those stages; `on_stage(stages finished, robust,
    broken_by)` is called after each one."""
    from .attacks.downstream import autoattack_backend
    from .attacks.downstream.base import FloatLogits
    cls, package = autoattack_backend()
    model = FloatLogits(model).eval()
    if package == "pyautoattack":
        aa = cls(model, norm="Linf", eps=eps, version="standard", seed=seed, device=x.device)
    else:
        aa = cls(model, norm="Linf", eps=eps, version="standard", seed=seed, device=str(x.device), verbose=False)
    robust = np.ones(len(x), dtype=bool)
    broken_by = np.full(len(x), -1)
    first = 0
    if done is not None:
        first, robust, broken_by = done[0], done[1].copy(), done[2].copy()
    for i, attack in enumerate(AA_STANDARD):
        if i < first:
            continue
        idx = np.flatnonzero(robust)
        if not len(idx):
            break
        aa.attacks_to_run = [attack]
        xs, ys = x[idx], y[idx]
        x_adv = aa.run_standard_evaluation(xs, ys, batch_size=batch_size) if package == "pyautoattack" \
            else aa.run_standard_evaluation(xs, ys, bs=batch_size)
        x_adv = x_adv[0] if isinstance(x_adv, tuple) else x_adv
        with torch.no_grad():
            ok = (model(x_adv).argmax(1) == ys).numpy()
        broken_by[idx[~ok]] = i
        robust[idx[~ok]] = False
        if on_stage is not None:
            on_stage(i + 1, robust, broken_by)
    return robust, broken_by


class _Progress:
    """The finished AutoAttack stages of one check, kept in a JSON file so that an interrupted check resumes; the
    file names what it is of (classifier checkpoint, samples, seed, batch size) and is ignored if that differs."""

    def __init__(self, path: Optional[Path], key: dict[str, Any]):
        self.path, self.key, self.stages = path, key, {}
        if path is not None and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                self.stages = saved["stages"]

    def get(self, eps: float) -> Optional[tuple[int, np.ndarray, np.ndarray]]:
        s = self.stages.get(repr(eps))
        return None if s is None else (s["done"], np.array(s["robust"], dtype=bool), np.array(s["broken_by"]))

    def seconds(self, eps: float) -> float:
        """Time the kept stages of this budget took, so a resumed check reports the whole check's time."""
        return float(self.stages.get(repr(eps), {}).get("seconds", 0.0))

    def saver(self, eps: float, started: float) -> Optional[Stage]:
        if self.path is None:
            return None

        def save(done: int, robust: np.ndarray, broken_by: np.ndarray) -> None:
            self.stages[repr(eps)] = {"done": done, "robust": robust.tolist(), "broken_by": broken_by.tolist(),
                                      "seconds": round(time.time() - started, 1)}
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(json.dumps({"key": self.key, "stages": self.stages}))
            tmp.replace(self.path)
        return save


def standard_outcomes(model_name: str, out: Path, n: int, label: Optional[str] = None
                      ) -> tuple[Any, dict[str, Any], dict[str, np.ndarray], Any]:
    """The zoo model (a registry name or a trainer folder), its `standard` run on the board under `label` (default:
    the card's name), that run's downstream bits and the first n (at most the run's) test samples; EntryError if
    the board has no such run or it is of another classifier checkpoint."""
    from zoo import load_model
    from zoo.data import load_dataset
    bundle = load_model(model_name)
    model_name = label or bundle.card.name
    entry = read_entry(entry_path(out, bundle.card.dataset, model_name))
    run = entry["runs"].get(RANKED_SUITE)
    if run is None or "outcomes" not in run:
        raise EntryError(f"{model_name}: no '{RANKED_SUITE}' run with per-sample outcomes on the board {out}")
    if entry["checkpoints"]["classifier"]["sha256"] != bundle.files["classifier"]["sha256"]:
        raise EntryError(f"{model_name}: the board's entry is of another classifier checkpoint")
    data = load_dataset(bundle.card.dataset, "test").subset(min(n, run["settings"]["n"]))
    return bundle, run, decoded(run)["downstream"], data


def compare(model_name: str, out: Path, n: int, batch_size: int = 100, seed: int = 0,
            budgets: Optional[Sequence[float]] = None, label: Optional[str] = None,
            progress: Optional[Path] = None) -> dict[str, Any]:
    """Per Linf budget of the entry's standard run (or the given ones): AutoAttack-standard vs the board's worst
    case on the first n samples, with the AutoAttack component that broke each sample the board missed. With
    `progress`, finished stages are kept in (and resumed from) that file."""
    bundle, run, bits, data = standard_outcomes(model_name, out, n, label)
    model_name = label or bundle.card.name
    n = len(data.labels)
    x, y = data.images, data.labels
    clean = bits["clean"][:n]
    items = [i for i in run["worst_case"]["downstream"] if i["norm"] == "Linf"]
    if budgets is not None:
        unknown = sorted(set(budgets) - {float(i["eps"]) for i in items})
        if unknown:
            raise EntryError(f"{model_name}: the '{RANKED_SUITE}' run has no Linf budget {unknown[0]:g}")
        items = [i for i in items if float(i["eps"]) in set(budgets)]
    rows: dict[str, Any] = {"model": model_name, "n": n, "budgets": []}
    kept = _Progress(progress, {"classifier": bundle.files["classifier"]["sha256"], "n": n, "seed": seed,
                                "batch_size": batch_size})
    for item in items:
        eps = float(item["eps"])
        board = clean.copy()
        for attack in item["attacks"]:
            board &= bits[row_label(attack, "Linf", eps)][:n]
        started = time.time() - kept.seconds(eps)
        aa = np.zeros(n, dtype=bool)
        broken_by = np.full(n, -1)
        ok = np.flatnonzero(clean)
        if len(ok):
            aa[ok], broken_by[ok] = _autoattack(bundle.classifier, x[ok], y[ok], eps, seed, batch_size,
                                                kept.get(eps), kept.saver(eps, started))
        missed_ids = np.flatnonzero(board & ~aa)
        missed, extra = len(missed_ids), int((aa & ~board).sum())
        rows["budgets"].append({
            "eps": eps, "board_robust": int(board.sum()), "autoattack_robust": int(aa.sum()), "missed": missed,
            "extra": extra, "board_accuracy": float(board.mean()), "autoattack_accuracy": float(aa.mean()),
            # McNemar: the two disagree on missed + extra samples; under "equally strong" each disagreement is a
            # coin flip, so missed - extra beyond 2 standard deviations would mean the board is weaker
            "noise": 2 * math.sqrt(missed + extra),
            "autoattack_breaks": {a: int((broken_by == i).sum()) for i, a in enumerate(AA_STANDARD)},
            "missed_by": {a: int((broken_by[missed_ids] == i).sum()) for i, a in enumerate(AA_STANDARD)},
            "missed_ids": [int(data.sample_ids[i]) for i in missed_ids],
            "seconds": round(time.time() - started, 1)})
    return rows


def _table(res: dict[str, Any]) -> str:
    lines = [f"{res['model']}, first {res['n']} samples: board worst case vs AutoAttack-standard (robust accuracy)"]
    for b in res["budgets"]:
        verdict = "no higher" if b["missed"] <= b["extra"] + b["noise"] else "HIGHER"
        found = ", ".join(f"{a} {k}" for a, k in b["missed_by"].items() if k) or "none"
        lines.append(f"  Linf {b['eps']:g}: board {b['board_accuracy']:.3f}, AutoAttack {b['autoattack_accuracy']:.3f}; "
                     f"missed {b['missed']} (found by {found}), extra {b['extra']} (noise {b['noise']:.1f}): "
                     f"{verdict}; {b['seconds']} s")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.ranking_check", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a zoo model or trainer folder with a standard entry on the board")
    p.add_argument("--name", default=None, help="its label on the board (default: the card's name)")
    p.add_argument("--out", default="leaderboards", help="the board (default leaderboards/)")
    p.add_argument("--n", type=int, default=100, help="first N samples of the standard run (default 100)")
    p.add_argument("--eps", default=None, help="only these Linf budgets, comma-separated (default: every one)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--json", default=None, help="also write the result to this file (and keep the progress of an "
                                                "unfinished check in FILE.partial, to resume from)")
    args = p.parse_args(argv)
    try:
        budgets = None if args.eps is None else [float(e) for e in args.eps.split(",")]
    except ValueError:
        print(f"error: --eps takes comma-separated numbers, not {args.eps!r}", file=sys.stderr)
        return 2
    from zoo import CheckpointError
    try:
        partial = Path(args.json + ".partial") if args.json else None
        res = compare(args.model, Path(args.out), args.n, args.batch_size, budgets=budgets, label=args.name,
                      progress=partial)
    except (EntryError, KeyError, FileNotFoundError, CheckpointError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    print(_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
