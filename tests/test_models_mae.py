"""MAE and its fine-tuned ViT reproduce the authors' code (../shared/fixtures/official)."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo import masking

from .helpers import official_arch, tiny_mae

TOL = 1e-5


def _load(official_dir, stem):
    family, arch = official_arch(stem)
    model = zoo.build(family, **arch, mean=0.0, std=1.0).eval()
    zoo.load_checkpoint(model, official_dir / f"{stem}.pth")
    io = torch.load(official_dir / f"{stem}.io.pt", weights_only=True)
    return model, arch, io


@pytest.mark.parametrize("stem", ["mae", "mae_normpix"])
def test_mae_matches_official(official_dir, stem):
    model, arch, io = _load(official_dir, stem)
    mask = masking.mask_from_noise(io["noise"], arch["mask_ratio"])
    assert torch.equal(mask, io["mask"].bool())
    with torch.no_grad():
        out = model.forward_mim(io["x"], mask)
    torch.testing.assert_close(out.pred, io["pred"], atol=TOL, rtol=0)
    torch.testing.assert_close(out.loss, io["loss"], atol=TOL, rtol=0)
    if not arch["norm_pix_loss"]:  # without norm_pix_loss the reconstruction is unpatchify(pred) (mean 0, std 1)
        torch.testing.assert_close(out.reconstruction, io["reconstruction"], atol=TOL, rtol=0)


def test_mae_normpix_reconstruction_is_denormalised_per_patch(official_dir):
    model, arch, io = _load(official_dir, "mae_normpix")
    mask = io["mask"].bool()
    with torch.no_grad():
        out = model.forward_mim(io["x"], mask)
    from zoo.models._common import patchify, unpatchify
    target = patchify(io["x"], 4)
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    expected = unpatchify(io["pred"] * (var + 1e-6) ** 0.5 + mean, 4, 3, (8, 8))
    torch.testing.assert_close(out.reconstruction, expected, atol=TOL, rtol=0)


def test_finetuned_vit_matches_official(official_dir):
    model, _, io = _load(official_dir, "mae_finetuned")
    with torch.no_grad():
        logits = model(io["x"])
    torch.testing.assert_close(logits, io["logits"], atol=TOL, rtol=0)


def test_mae_output_ignores_order_of_kept_patches(official_dir):
    """Masks given as bool N x L: the same masked set gives the same output whatever the noise order."""
    model, arch, io = _load(official_dir, "mae")
    mask = io["mask"].bool()
    with torch.no_grad():
        a = model.forward_mim(io["x"], mask).pred
        b = model.forward_mim(io["x"].flip(0), mask.flip(0)).pred.flip(0)
    torch.testing.assert_close(a, b, atol=TOL, rtol=0)


def test_normalisation_inside_the_model(official_dir):
    """A model built with mean/std sees (x - mean) / std: feeding unnormalised images gives the same output."""
    family, arch = official_arch("mae_finetuned")
    model = zoo.build(family, **arch, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)).eval()
    zoo.load_checkpoint(model, official_dir / "mae_finetuned.pth")
    io = torch.load(official_dir / "mae_finetuned.io.pt", weights_only=True)
    raw = io["x"] * torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1) + torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(raw), io["logits"], atol=1e-4, rtol=0)


def test_unknown_arch_key_is_an_error():
    with pytest.raises(ValueError, match="unknown architecture key"):
        zoo.build("mae", img_size=28, patch_size=4, in_chans=1, mean=0.5, std=0.5, embed_dimension=64)
    with pytest.raises(ValueError, match="unknown model family"):
        zoo.build("mea")


def test_mask_rows_must_mask_the_same_number():
    model = tiny_mae()
    x = torch.rand(2, 1, 28, 28)
    mask = model.make_mask([0, 1])
    mask[1, mask[1].nonzero()[0]] = False
    with pytest.raises(ValueError, match="same number"):
        model.forward_mim(x, mask)


def test_loss_against_a_target_differs_from_self_loss():
    model = tiny_mae()
    x = torch.rand(2, 1, 28, 28)
    mask = model.make_mask([0, 1])
    with torch.no_grad():
        own = model.forward_mim(x, mask)
        other = model.forward_mim(x, mask, target=torch.zeros_like(x))
    torch.testing.assert_close(own.pred, other.pred)
    assert not torch.isclose(own.loss, other.loss)
