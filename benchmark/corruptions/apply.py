"""Corrupt a batch of images as the runner sees them: N x C x H x W floats in [0, 1], C = 1 or 3.

Each image is corrupted as uint8 (the form ImageNet-C, CIFAR-10-C and the `imagecorruptions` package corrupt)
with a random state that is a pure function of (seed, sample id, corruption): the same image gets the same
corruption in every run, batch and shard, and the severities of one corruption share their random draws (the
severity changes only the parameters). The stream numbers stay clear of the masks' and the attacks' ones.
"""
from __future__ import annotations

import numpy as np
import torch

from .names import CORRUPTIONS, check_corruption, check_severity
from .ops import corrupt_array

STREAM_BASE = 100   # random stream of corruption k: STREAM_BASE + k (masks and random starts use 0-9)

__all__ = ["STREAM_BASE", "corrupt_batch", "sample_state"]


def sample_state(seed: int, sample_id: int, name: str) -> np.random.RandomState:
    """The random state a corruption draws from for one sample (a legacy RandomState: the reference code draws
    from numpy's legacy global state, and the same calls on the same state give the same numbers)."""
    if seed < 0 or sample_id < 0:
        raise ValueError("seed and sample ids must be non-negative")
    stream = STREAM_BASE + CORRUPTIONS.index(check_corruption(name))
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence([int(seed), int(sample_id), stream])))


def corrupt_batch(x: torch.Tensor, name: str, severity: int, sample_ids: torch.Tensor, seed: int = 0
                  ) -> torch.Tensor:
    """The batch under corruption `name` at `severity`, same shape, dtype and device, values in [0, 1]."""
    check_corruption(name)
    severity = check_severity(severity)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected N x C x H x W images with C = 1 or 3, got {tuple(x.shape)}")
    ids = [int(i) for i in sample_ids.tolist()]
    if len(ids) != x.shape[0]:
        raise ValueError(f"{len(ids)} sample ids for {x.shape[0]} images")
    pixels = np.rint(x.detach().float().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
    out = np.empty_like(pixels)
    for i, sid in enumerate(ids):
        image = pixels[i, 0] if pixels.shape[1] == 1 else pixels[i].transpose(1, 2, 0).copy()
        done = corrupt_array(image, name, severity, sample_state(seed, sid, name))
        out[i] = done[np.newaxis] if done.ndim == 2 else done.transpose(2, 0, 1)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255
