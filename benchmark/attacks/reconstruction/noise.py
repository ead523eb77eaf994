"""Random noise in the eps-ball: the simplest black-box attack, a sanity check of the white-box ones.

Draws `samples` points of the ball per image (uniform, per sample id, from a stream the gradient attacks do
not use) and keeps the one with the highest MIM loss on the evaluation mask: forward passes only. If it beats
the gradient attacks at the same budget, their gradients are not to be trusted (gradient masking).
"""
from __future__ import annotations

import torch

from .._geometry import clip_to_image, random_start
from ..registry import register_attack
from .base import MIMAttack

_NOISE_STREAM = 1000  # streams 1000 + k: the k-th draw of each sample


@register_attack
class MIMRandomNoise(MIMAttack):
    name = "random_noise"
    cell_fields = ("threat", "scope", "eot_samples")

    def __init__(self, model, eps: float, *, samples: int = 8, **settings) -> None:
        super().__init__(model, eps, steps=samples, random_start=True, **settings)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            groups = self._groups(x, mask, sample_ids)
            best, best_delta = None, torch.zeros_like(x)
            for k in range(self.steps):
                delta = random_start(x, self.eps, self.norm, sample_ids, self.seed, stream=_NOISE_STREAM + k)
                delta = clip_to_image(x, delta)
                value, _ = self._evaluate(delta, x, groups, need_grad=False)
                better = torch.ones_like(value, dtype=torch.bool) if best is None else value > best
                best = value if best is None else torch.where(better, value, best)
                best_delta[better] = delta[better]
        return (x + best_delta).clamp(0, 1)
