"""`python -m benchmark.quality --model NAME`: a model's clean quality on the full test split (the numbers its
card records): classifier accuracy and masked-patch PSNR against the mean-of-visible fill."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from zoo.fileio import atomic_write_text

from .runner.quality import evaluate_quality

__all__ = ["evaluate_quality", "main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mae_vit_t_fmnist", help="registry name or trainer folder")
    p.add_argument("--n-examples", type=int, default=None, help="first N test samples (default: all)")
    p.add_argument("--write-card", action="store_true", help="store the numbers in the folder's card.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from zoo import CheckpointError, load_model
    try:
        bundle = load_model(args.model)
    except (KeyError, CheckpointError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    result = evaluate_quality(bundle.mim, bundle.classifier, bundle.card.dataset, n=args.n_examples,
                              progress=not args.no_progress)
    print(json.dumps(result, indent=1))
    if args.write_card:
        if not bundle.card.local_dir:
            print("error: --write-card needs a shipped or trainer-written folder", file=sys.stderr)
            return 2
        card_path = Path(bundle.card.local_dir) / "card.json"
        card = json.loads(card_path.read_text())
        card["metrics"] = result
        atomic_write_text(card_path, json.dumps(card, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
