"""Clean quality of a model bundle on the test split: classifier accuracy and masked-patch PSNR.

The PSNR is compared with the trivial fill (each image's masked patches set to the mean of its visible
pixels), so a reconstruction's worth is stated against something that knows nothing.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from zoo.data import load_dataset

from .. import metrics as M


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
