"""Clean quality of a model bundle on the full test split: classifier accuracy and masked-patch PSNR.

The PSNR is compared with the trivial fill (each image's masked patches set to the mean of its visible
pixels), so a reconstruction's worth is stated against something that knows nothing.
`python -m benchmark.quality --model mae_vit_t_fmnist` reruns the numbers recorded in the card.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from zoo.data import load_dataset

from . import metrics as M


@torch.inference_mode()
def evaluate_quality(mim: Optional[nn.Module], classifier: Optional[nn.Module], dataset: str,
                     device: torch.device | str = "cpu", n: Optional[int] = None, batch_size: int = 500,
                     seed: int = 0, progress: bool = True) -> dict[str, Any]:
    data = load_dataset(dataset, "test").subset(n)
    correct, psnr, fill = [], [], []
    for i in tqdm(range(0, len(data), batch_size), desc="quality", disable=not progress):
        x = data.images[i:i + batch_size].to(device)
        y = data.labels[i:i + batch_size].to(device)
        ids = data.sample_ids[i:i + batch_size]
        if classifier is not None:
            correct.append(M.accuracy(classifier.eval()(x), y).cpu())
        if mim is not None and getattr(mim, "family", "") != "beit":
            mask = mim.eval().make_mask(ids, seed=seed).to(device)
            out = mim.forward_mim(x, mask)
            psnr.append(M.masked_psnr(out.reconstruction, x, mask, mim.patch_size).cpu())
            fill.append(M.masked_psnr(M.mean_fill(x, mask, mim.patch_size), x, mask, mim.patch_size).cpu())
    result: dict[str, Any] = {"dataset": dataset, "split": "test", "n": len(data), "mask_seed": seed}
    if correct:
        result["test_accuracy"] = round(float(torch.cat(correct).mean()), 4)
    if psnr:
        result["masked_psnr"] = round(float(torch.cat(psnr).mean()), 3)
        result["mean_fill_psnr"] = round(float(torch.cat(fill).mean()), 3)
        result["psnr_gain_db"] = round(result["masked_psnr"] - result["mean_fill_psnr"], 3)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mae_vit_t_fmnist", help="registry name or trainer folder")
    p.add_argument("--n-examples", type=int, default=None, help="first N test samples (default: all)")
    p.add_argument("--write-card", action="store_true", help="store the numbers in the folder's card.json")
    args = p.parse_args(argv)
    from zoo import CheckpointError, load_model
    try:
        bundle = load_model(args.model)
    except (KeyError, CheckpointError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    result = evaluate_quality(bundle.mim, bundle.classifier, bundle.card.dataset, n=args.n_examples)
    print(json.dumps(result, indent=1))
    if args.write_card:
        if not bundle.card.local_dir:
            print("error: --write-card needs a shipped or trainer-written folder", file=sys.stderr)
            return 2
        card_path = Path(bundle.card.local_dir) / "card.json"
        card = json.loads(card_path.read_text())
        card["metrics"] = result
        card_path.write_text(json.dumps(card, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
