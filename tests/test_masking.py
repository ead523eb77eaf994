"""Masks are a pure function of (seed, sample id): same in every batch, run and model of the same grid."""
from __future__ import annotations

import torch

from zoo import masking

from .helpers import tiny_mae


def test_mask_is_a_function_of_seed_and_sample_id():
    model = tiny_mae()
    a = model.make_mask([3, 7, 11], seed=0)
    b = model.make_mask([11, 3], seed=0)
    assert torch.equal(a[2], b[0]) and torch.equal(a[0], b[1])
    assert torch.equal(a, model.make_mask([3, 7, 11], seed=0))
    assert not torch.equal(a, model.make_mask([3, 7, 11], seed=1))
    assert not torch.equal(a[0], a[1])


def test_mask_ratio_and_count():
    model = tiny_mae()
    m = model.make_mask(range(50))
    assert m.dtype == torch.bool and m.shape == (50, 49)
    # MAE keeps int(49 * 0.25) = 12 patches
    assert (m.sum(1) == 37).all()


def test_same_grid_models_share_masks():
    assert torch.equal(tiny_mae().make_mask([5, 6]), tiny_mae(embed_dim=64, depth=2).make_mask([5, 6]))


def test_mask_from_noise_keeps_smallest():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
    assert masking.mask_from_noise(noise, 0.5).tolist() == [[True, False, True, False]]


def test_masks_are_roughly_uniform_over_patches():
    m = masking.random_mask(range(4000), 49, 0.75, seed=0).float().mean(0)
    assert (m - 0.755).abs().max() < 0.04
