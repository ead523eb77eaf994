#!/usr/bin/env python
"""Swap the re-fine-tuned classifiers of zoo/staging/ into zoo/weights/, all together (issue 16's fairness rule).

    python scripts/swap_staged.py            # check, then swap
    python scripts/swap_staged.py --dry-run  # only say what it would do

Refuses (exit 2, one line) unless every defended model of zoo/weights/ has a staged folder whose files match its
card and whose MIM weights are the shipped ones, byte for byte: the swap replaces the fine-tuning only. For each
model it copies the staged classifier, fine-tuning log and card, keeping in the card the shipped card's record of
how the MIM weights were pretrained (the staged card only says pretraining was skipped). The board entries of the
old classifiers are removed (git history and docs/DEFENDED_ZOO.md keep their numbers); the staged board's entries
and example files take their place. Then `python -m benchmark.report --readme README.md` and
`python -m benchmark.report --missing` say what is left to run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
COPIED = ("classifier.safetensors", "log_finetune.csv")


class SwapError(Exception):
    """The staging area is not ready for a swap; nothing was changed."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "card.json").read_text())


def defended_models(weights: Path) -> list[str]:
    """The shipped models whose card names a defense (the embedded default is the undefended baseline)."""
    return sorted(d.name for d in weights.iterdir() if (d / "card.json").is_file()
                  and _card(d).get("defenses"))


def check(weights: Path, staging: Path) -> list[str]:
    """The models to swap; SwapError naming the first problem if the staging area is incomplete or inconsistent."""
    models = defended_models(weights)
    absent = [m for m in models if not (staging / m / "card.json").is_file()]
    if absent:
        raise SwapError(f"{len(absent)} of {len(models)} defended models are not staged yet ({', '.join(absent)}); "
                        f"the swap replaces all of them together")
    for m in models:
        card = _card(staging / m)
        for role, info in card["files"].items():
            if _sha256(staging / m / info["file"]) != info["sha256"]:
                raise SwapError(f"{staging / m / info['file']}: sha256 differs from its card")
        if card["files"]["mim"]["sha256"] != _sha256(weights / m / "mim.safetensors"):
            raise SwapError(f"{m}: the staged MIM weights differ from the shipped ones (the swap replaces the "
                            f"fine-tuning only)")
        if not (staging / m / "log_finetune.csv").is_file():
            raise SwapError(f"{staging / m}: no log_finetune.csv")
    return models


def merged_card(shipped: dict[str, Any], staged: dict[str, Any], model: str) -> dict[str, Any]:
    """The staged card with the shipped card's pretraining record put back in front of its fine-tuning stage."""
    card = json.loads(json.dumps(staged))
    stages: dict[str, Any] = {}
    for key in ("init_from", "pretrain"):
        if key in shipped["training"]["stages"]:
            stages[key] = shipped["training"]["stages"][key]
    mim_from = dict(staged["training"]["stages"].get("mim_from", {}))
    mim_from.update(file=f"zoo/weights/{model}/mim.safetensors",
                    pretraining="kept: the shipped MIM weights, pretrained as the stages before this one record")
    stages["mim_from"] = mim_from
    stages.update({k: v for k, v in staged["training"]["stages"].items() if k not in stages})
    card["training"]["stages"] = stages
    return card


def swap(weights: Path, staging: Path, board: Path, dry_run: bool = False) -> list[str]:
    """Check, then swap every staged model in; returns what was done, a line each."""
    models = check(weights, staging)
    done = []
    for m in models:
        card = merged_card(_card(weights / m), _card(staging / m), m)
        done.append(f"{m}: classifier {card['files']['classifier']['sha256'][:12]}..., "
                    f"test accuracy {card['metrics']['test_accuracy']}")
        if not dry_run:
            for name in COPIED:
                shutil.copyfile(staging / m / name, weights / m / name)
            (weights / m / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    staged_board = staging / "board"
    for dataset_dir in sorted(d for d in board.iterdir() if (d / "entries").is_dir()):
        dataset = dataset_dir.name
        for m in models:
            old = [dataset_dir / "entries" / f"{m}.json"] + sorted((dataset_dir / "examples").glob(f"{m}.*"))
            for f in old:
                if f.exists():
                    done.append(f"remove {f.relative_to(board.parent)}")
                    if not dry_run:
                        f.unlink()
        for sub in ("entries", "examples"):
            for f in sorted((staged_board / dataset / sub).glob("*")) if (staged_board / dataset / sub).is_dir() else []:
                if f.name.split(".")[0] in models:
                    done.append(f"move {f.relative_to(staging.parent)} -> {(dataset_dir / sub).relative_to(board.parent)}/")
                    if not dry_run:
                        shutil.move(str(f), dataset_dir / sub / f.name)
    return done


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/swap_staged.py", description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(REPO / "zoo" / "weights"))
    p.add_argument("--staging", default=str(REPO / "zoo" / "staging"))
    p.add_argument("--board", default=str(REPO / "leaderboards"))
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    args = p.parse_args(argv)
    try:
        for line in swap(Path(args.weights), Path(args.staging), Path(args.board), args.dry_run):
            print(line)
    except SwapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
