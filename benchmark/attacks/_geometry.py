"""Lp-ball geometry shared by the hand-written attacks: per-sample random starts, projections, ascent steps.

Random starts are drawn from a generator seeded by (run seed, sample id), so a sample's attack never depends on
the batch it is in, how a run is sharded, or on torch's global RNG.
"""
from __future__ import annotations

import numpy as np
import torch

from zoo import masking

START_STREAM = 2  # per-sample RNG stream of random starts (masks use other streams)


def random_start(x: torch.Tensor, eps: float, norm: str, sample_ids: torch.Tensor, seed: int,
                 stream: int = START_STREAM) -> torch.Tensor:
    """A uniform point of the Linf ball, or a uniform point of the L2 ball, per sample id (a perturbation)."""
    shape = x.shape[1:]
    rows = []
    for sid in sample_ids.tolist():
        rng = masking.sample_rng(seed, int(sid), stream)
        if norm == "Linf":
            rows.append(rng.uniform(-eps, eps, size=shape))
        else:
            d = rng.standard_normal(size=shape)
            r = rng.uniform() ** (1.0 / d.size)
            rows.append(d / (float((d ** 2).sum()) ** 0.5 + 1e-12) * eps * r)
    if not rows:
        return torch.zeros_like(x)
    return torch.from_numpy(np.stack(rows)).to(device=x.device, dtype=x.dtype)


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The closest point of the eps-ball (Linf: clip; L2: rescale onto the sphere when outside)."""
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return delta * _per_sample((eps / norms).clamp(max=1.0), delta)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent unit step of the norm: sign (Linf) or the L2-normalised gradient."""
    if norm == "Linf":
        return grad.sign()
    g = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return grad / _per_sample(g, grad)


def clip_to_image(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The part of `delta` that keeps x + delta inside [0, 1]."""
    return (x + delta).clamp(0, 1) - x
