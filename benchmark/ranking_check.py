"""`python -m benchmark.ranking_check --model NAME`: is the board's worst case as strong as AutoAttack-standard?

Runs pyautoattack's AutoAttack, version 'standard' (APGD-CE, APGD-T with 9 targets, FAB-T with 9 targets, Square
with 5000 queries), directly on the first n samples of the evaluation set at every Linf budget of the model's
committed `standard` entry, and compares per sample with the entry's worst case: `missed` counts samples the
board calls robust that AutoAttack breaks, `extra` the reverse. The board's number is no higher than
AutoAttack's when missed <= extra, up to the comparison's noise (both attacks are randomised). Prints a table;
`--json FILE` keeps it (docs/RANKING.md shows it for the shipped zoo).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .leaderboard.entries import EntryError, entry_path, read_entry
from .leaderboard.outcomes import decoded
from .suites import RANKED_SUITE, row_label


def _autoattack(model, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int, batch_size: int) -> torch.Tensor:
    from .attacks.downstream import autoattack_backend
    from .attacks.downstream.base import FloatLogits
    cls, package = autoattack_backend()
    model = FloatLogits(model).eval()
    if package == "pyautoattack":
        aa = cls(model, norm="Linf", eps=eps, version="standard", seed=seed, device=x.device)
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=batch_size)
    else:
        aa = cls(model, norm="Linf", eps=eps, version="standard", seed=seed, device=str(x.device), verbose=False)
        x_adv = aa.run_standard_evaluation(x, y, bs=batch_size)
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


def compare(model_name: str, out: Path, n: int, batch_size: int = 100, seed: int = 0) -> dict[str, Any]:
    """Per Linf budget of the entry's standard run: AutoAttack-standard vs the board's worst case on n samples."""
    from zoo import load_model
    from zoo.data import load_dataset
    bundle = load_model(model_name)
    dataset = bundle.card.dataset
    entry = read_entry(entry_path(out, dataset, model_name))
    run = entry["runs"].get(RANKED_SUITE)
    if run is None or "outcomes" not in run:
        raise EntryError(f"{model_name}: no '{RANKED_SUITE}' run with per-sample outcomes on the board {out}")
    if entry["checkpoints"]["classifier"]["sha256"] != bundle.files["classifier"]["sha256"]:
        raise EntryError(f"{model_name}: the board's entry is of another classifier checkpoint")
    n = min(n, run["settings"]["n"])
    bits = decoded(run)["downstream"]
    data = load_dataset(dataset, "test").subset(n)
    x, y = data.images, data.labels
    clean = bits["clean"][:n]
    rows: dict[str, Any] = {"model": model_name, "n": n, "budgets": []}
    for item in run["worst_case"]["downstream"]:
        if item["norm"] != "Linf":
            continue
        eps = float(item["eps"])
        board = clean.copy()
        for attack in item["attacks"]:
            board &= bits[row_label(attack, "Linf", eps)][:n]
        started = time.time()
        aa = np.zeros(n, dtype=bool)
        ok = np.flatnonzero(clean)
        if len(ok):
            aa[ok] = _autoattack(bundle.classifier, x[ok], y[ok], eps, seed, batch_size).numpy()
        missed, extra = int((board & ~aa).sum()), int((aa & ~board).sum())
        rows["budgets"].append({
            "eps": eps, "board_robust": int(board.sum()), "autoattack_robust": int(aa.sum()), "missed": missed,
            "extra": extra, "board_accuracy": float(board.mean()), "autoattack_accuracy": float(aa.mean()),
            # McNemar: the two disagree on missed + extra samples; under "equally strong" each disagreement is a
            # coin flip, so missed - extra beyond 2 standard deviations would mean the board is weaker
            "noise": 2 * math.sqrt(missed + extra), "seconds": round(time.time() - started, 1)})
    return rows


def _table(res: dict[str, Any]) -> str:
    lines = [f"{res['model']}, first {res['n']} samples: board worst case vs AutoAttack-standard (robust accuracy)"]
    for b in res["budgets"]:
        verdict = "no higher" if b["missed"] <= b["extra"] + b["noise"] else "HIGHER"
        lines.append(f"  Linf {b['eps']:g}: board {b['board_accuracy']:.3f}, AutoAttack {b['autoattack_accuracy']:.3f}; "
                     f"missed {b['missed']}, extra {b['extra']} (noise {b['noise']:.1f}): {verdict}; {b['seconds']} s")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.ranking_check", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a zoo model with a committed standard entry")
    p.add_argument("--out", default="leaderboards", help="the board (default leaderboards/)")
    p.add_argument("--n", type=int, default=100, help="first N samples of the standard run (default 100)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--json", default=None, help="also write the result to this file")
    args = p.parse_args(argv)
    try:
        res = compare(args.model, Path(args.out), args.n, args.batch_size)
    except (EntryError, KeyError, FileNotFoundError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    print(_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
