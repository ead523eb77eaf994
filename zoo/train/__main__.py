"""Command line of the trainer; see `python -m zoo.train --help`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from .recipes import AMP_MODES, get_recipe, list_recipes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zoo.train",
                                description="Train a MIM model (and its classifier) from a named recipe.")
    p.add_argument("--recipe", help="recipe name (see --list-recipes)")
    p.add_argument("--list-recipes", action="store_true", help="print the recipes and their defenses")
    p.add_argument("--json", action="store_true", help="with --list-recipes: machine-readable output")
    p.add_argument("--epochs", type=float, help="override the epochs of every stage of the recipe")
    p.add_argument("--max-steps", type=int, help="stop each stage after this many steps (smoke tests)")
    p.add_argument("--batch-size", type=int, help="override the batch size of every stage")
    p.add_argument("--amp", choices=AMP_MODES,
                   help="bf16 autocast of every stage: cuda = on CUDA only (the recipes' default), bf16 = on every "
                        "device (a CPU with AMX or AVX512-BF16 trains ~2x faster), off = never")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.DEFENSE.KEY=VALUE",
                   help="override one defense setting of the recipe (repeatable), e.g. --set "
                        "finetune.adversarial_finetune.attack=pgd --set finetune.adversarial_finetune.steps=3")
    p.add_argument("--mim-from", metavar="MODEL",
                   help="skip MIM pretraining and fine-tune from this model's MIM weights (a shipped model's name or "
                        "a trainer folder), shipped unchanged: a new fine-tuning for an existing variant")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<recipe>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")
    p.add_argument("--resume", action="store_true", help="continue from the output folder's last checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is steadier on a "
                                                 "busy machine)")
    p.add_argument("--no-eval", action="store_true", help="skip the quality evaluation on the test split")
    return p


def _bad_number(args: argparse.Namespace) -> Optional[str]:
    """The first count or size option that is not positive, as a one-line error; None when all are fine."""
    for option in ("threads", "max_steps", "batch_size", "epochs"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            return f"--{option.replace('_', '-')} must be positive, got {value}"
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    bad = _bad_number(args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    if args.list_recipes:
        recipes = [get_recipe(n) for n in list_recipes()]
        rows = [{"name": r.name, "defenses": r.defenses, "dataset": r.dataset, "runs_here": r.runs_here,
                 "description": r.description} for r in recipes]
        if args.json:
            print(json.dumps([{"name": r["name"], "defenses": r["defenses"]} for r in rows], indent=1))
        else:
            for r in rows:
                where = "" if r["runs_here"] else "  [GPU recipe, documented]"
                print(f"{r['name']:<44} {', '.join(r['defenses']) or 'none'}{where}\n    {r['description']}")
        return 0
    if not args.recipe:
        print("error: --recipe NAME is required (or --list-recipes)", file=sys.stderr)
        return 2
    try:
        recipe = get_recipe(args.recipe).with_overrides(epochs=args.epochs, batch_size=args.batch_size, amp=args.amp)
        for assignment in args.set:
            recipe = recipe.with_setting(assignment)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    from .trainer import mim_weights_file, resolve_device, train
    try:
        device = resolve_device(args.device)
        if args.mim_from:
            mim_weights_file(args.mim_from)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / recipe.name
    card = train(recipe, out, device, seed=args.seed, max_steps=args.max_steps, resume=args.resume,
                 evaluate=not args.no_eval, mim_from=args.mim_from)
    if card:
        print(f"wrote {out}/ (card.json, mim.safetensors, classifier.safetensors)")
        if card.get("metrics"):
            print(json.dumps(card["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
