"""`python -m benchmark.quality` (the numbers a trained model's card records) against a by-hand computation."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

import zoo
from zoo.data import load_dataset
from zoo.models._common import patch_mask_to_pixels

N = 400


def _by_hand(bundle, n: int) -> dict[str, float]:
    data = load_dataset("fashion_mnist", "test").subset(n)
    mim, clf = bundle.mim.eval(), bundle.classifier.eval()
    with torch.no_grad():
        acc = float((clf(data.images).argmax(1) == data.labels).float().mean())
        mask = mim.make_mask(data.sample_ids, seed=0)
        recon = mim.forward_mim(data.images, mask).reconstruction.clamp(0, 1)
    p = mim.patch_size
    pix = patch_mask_to_pixels(mask, p, (7, 7)).float()
    mse = ((recon - data.images) ** 2 * pix).sum((1, 2, 3)) / pix.sum((1, 2, 3))
    psnr = (10 * torch.log10(1 / mse)).mean()
    vis = 1 - pix
    fill = (data.images * vis).sum((2, 3), keepdim=True) / vis.sum((2, 3), keepdim=True)
    mse_fill = ((fill - data.images) ** 2 * pix).sum((1, 2, 3)) / pix.sum((1, 2, 3))
    return {"test_accuracy": acc, "masked_psnr": float(psnr), "mean_fill_psnr": float((10 * torch.log10(1 / mse_fill)).mean())}


def test_quality_command_measures_what_its_card_records(one_thread):
    from benchmark.quality import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--model", "mae_vit_t_fmnist", "--n-examples", str(N), "--no-progress"]) == 0
    got = json.loads(out.getvalue())
    expected = _by_hand(zoo.load_model("mae_vit_t_fmnist"), N)
    assert got["n"] == N
    assert got["test_accuracy"] == pytest.approx(expected["test_accuracy"], abs=1e-4)
    assert got["masked_psnr"] == pytest.approx(expected["masked_psnr"], abs=2e-3)
    assert got["mean_fill_psnr"] == pytest.approx(expected["mean_fill_psnr"], abs=2e-3)
    assert got["psnr_gain_db"] == pytest.approx(got["masked_psnr"] - got["mean_fill_psnr"], abs=2e-3)
