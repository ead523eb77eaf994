"""SimMIM reproduces the authors' code (../shared/fixtures/official/simmim*)."""
from __future__ import annotations

import pytest
import torch

import zoo

from .helpers import official_arch

TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")


def _load(official_dir, **extra):
    family, arch = official_arch("simmim")
    model = zoo.build(family, **arch, mean=0.0, std=1.0, **extra).eval()
    zoo.load_checkpoint(model, official_dir / "simmim.pth")
    return model, torch.load(official_dir / "simmim.io.pt", weights_only=True)


def test_simmim_matches_official(official_dir):
    model, io = _load(official_dir)
    mask = io["mask"].flatten(1).bool()  # official N x h x w -> N x L, row-major as SimMIM flattens it
    with torch.no_grad():
        out = model.forward_mim(io["x"], mask)
    torch.testing.assert_close(out.pred, io["reconstruction"], atol=TOL, rtol=0)
    torch.testing.assert_close(out.loss, io["loss"], atol=TOL, rtol=0)
    # mean 0, std 1: the reconstruction in input space is the decoder output itself
    torch.testing.assert_close(out.reconstruction, io["reconstruction"], atol=TOL, rtol=0)
    assert out.latent.shape == (3, 65, 64) and model.family == "simmim"


def test_simmim_per_sample_loss_and_target(official_dir):
    model, io = _load(official_dir)
    mask = io["mask"].flatten(1).bool()
    with torch.no_grad():
        per = model.forward_mim(io["x"], mask, reduction="none").loss
        other = model.forward_mim(io["x"], mask, target=torch.zeros_like(io["x"])).loss
    pix = mask.sum(1).float()  # same masked-pixel count weights per sample
    torch.testing.assert_close((per * pix).sum() / pix.sum(), io["loss"], atol=TOL, rtol=0)
    assert per.shape == (3,) and not torch.isclose(other, io["loss"])


def test_simmim_normalises_inside(official_dir):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    family, arch = official_arch("simmim")
    model = zoo.build(family, **arch, mean=mean, std=std).eval()
    zoo.load_checkpoint(model, official_dir / "simmim.pth")
    io = torch.load(official_dir / "simmim.io.pt", weights_only=True)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model.forward_mim(io["x"] * s + m, io["mask"].flatten(1).bool())
    torch.testing.assert_close(out.pred, io["reconstruction"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out.reconstruction, io["reconstruction"] * s + m, atol=1e-4, rtol=0)


def test_simmim_coarse_mask(official_dir):
    model, _ = _load(official_dir, mask_patch_size=8, mask_ratio=0.6)
    m = model.make_mask(range(20), seed=0)
    assert m.shape == (20, 64) and m.dtype == torch.bool
    assert (m.sum(1) == 4 * 10).all()  # ceil(16 cells * 0.6) = 10 cells of 2 x 2 patches
    grid = m.view(20, 4, 2, 4, 2)  # each 2 x 2 block of patches is all masked or all visible
    assert (grid.all(dim=(2, 4)) == grid.any(dim=(2, 4))).all()
    assert torch.equal(model.make_mask([7, 3]), m[[7, 3]])


def test_simmim_arch_checks():
    with pytest.raises(ValueError, match="unknown architecture key"):
        zoo.build("simmim", img_size=32, patch_size=4, embed_dim=32, depth=1, num_heads=2, mask_ratio=0.6,
                  norm_pix_loss=True)
    with pytest.raises(ValueError, match="encoder_stride"):
        zoo.build("simmim", img_size=32, patch_size=4, embed_dim=32, depth=1, num_heads=2, encoder_stride=8)
    with pytest.raises(ValueError, match="mask_patch_size"):
        zoo.build("simmim", img_size=32, patch_size=4, embed_dim=32, depth=1, num_heads=2, mask_patch_size=6)
