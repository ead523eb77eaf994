"""PGD (Madry et al., 2018): Linf (as torchattacks.PGD) or L2 (as torchattacks.PGDL2), with early stopping.

Step for step this is torchattacks' arithmetic (cross-entropy ascent, sign or L2-normalised step, projection
onto the ball and [0, 1]: `ImageStep` of the shared ascent loop); tests check that it returns exactly
torchattacks' images when early stopping is off and the random start is drawn as torchattacks draws it. What it
adds, for speed: a sample is frozen at the first iterate that misclassifies it (that iterate is kept: the best
possible result for robust accuracy) and leaves the batch, so later steps cost only what is still standing;
random starts are drawn per sample id (seed, sample id), so no number depends on the batch a sample is in.
The batch shrinks every `compact_every` steps (every step on CPU; every 4 on CUDA, to spare host syncs).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._geometry import random_start
from ..ascent import Evaluation, ImageStep, projected_ascent
from ..registry import register_attack
from .base import DownstreamAttack

__all__ = ["PGD", "iterative_attack", "torch_style_start"]


def torch_style_start(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The random start torchattacks draws from torch's RNG (used to check equality with it)."""
    if norm == "Linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    delta = torch.empty_like(x).normal_()
    n = delta.view(x.size(0), -1).norm(p=2, dim=1).view(x.size(0), 1, 1, 1)
    r = torch.zeros_like(n).uniform_(0, 1)
    return delta * (r / n * eps)


def iterative_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                     norm: str = "Linf", random: bool = True, start: str = "per_sample",
                     sample_ids: Optional[torch.Tensor] = None, seed: int = 0, early_stop: bool = True,
                     bim: bool = False, compact_every: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial images and a bool per sample: broken (misclassified at a returned iterate) or not.

    `start`: 'per_sample' (seeded by sample id, the benchmark's default) or 'torch' (torch's RNG, as torchattacks).
    Without early stopping every sample runs all `steps` and the last iterate is returned, as torchattacks does.
    """
    if norm not in ("Linf", "L2"):
        raise ValueError(f"unknown norm '{norm}'")
    x, y = x.detach(), y.detach()
    if compact_every is None:
        compact_every = 1 if x.device.type == "cpu" else 4
    adv = x.clone()
    if random:
        delta = (random_start(x, eps, norm, sample_ids, seed) if start == "per_sample"
                 else torch_style_start(x, eps, norm))
        adv = torch.clamp(adv + delta, min=0, max=1)

    def evaluate(z: torch.Tensor, rows: torch.Tensor, need_grad: bool) -> Evaluation:
        if not need_grad:
            with torch.no_grad():
                return Evaluation(success=model(z).argmax(1) != y[rows])
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(z)
            grad, = torch.autograd.grad(F.cross_entropy(logits, y[rows]), z)
        return Evaluation(success=logits.detach().argmax(1) != y[rows], grad=grad)

    was_training = model.training
    model.eval()
    try:
        result, broken = projected_ascent(evaluate, x, adv, ImageStep(eps, alpha, norm, bim), steps=steps,
                                          early_stop=early_stop, compact_every=compact_every)
        if not early_stop:
            with torch.no_grad():
                broken = model(result).argmax(1) != y
    finally:
        model.train(was_training)
    return result.detach(), broken


@register_attack
class PGD(DownstreamAttack):
    name = "pgd"
    cell_fields = ("steps", "alpha", "random_start")
    stops_early = True
    bim = False

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 20, alpha: float = 0.0,
                 random_start: bool = True, seed: int = 0, early_stop: bool = True, start: str = "per_sample") -> None:
        """`early_stop`: stop on samples already broken; `start`: random starts drawn per sample id
        ('per_sample') or from torch's RNG as torchattacks does ('torch')."""
        super().__init__(model, eps, norm=norm, seed=seed)
        if start not in ("per_sample", "torch"):
            raise ValueError(f"start must be 'per_sample' or 'torch', got {start!r}")
        self.steps = int(steps)
        self.alpha = float(alpha) if alpha else 2.5 * self.eps / max(self.steps, 1)
        self.random_start, self.early_stop, self.start = bool(random_start), bool(early_stop), start

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.norm}, eps={self.eps:g}, steps={self.steps}, alpha={self.alpha:g})"

    def forward(self, x, y, sample_ids):
        adv, _ = iterative_attack(self.model, x, y, eps=self.eps, alpha=self.alpha, steps=self.steps, norm=self.norm,
                                  random=self.random_start and not self.bim, start=self.start, sample_ids=sample_ids,
                                  seed=self.seed, early_stop=self.early_stop, bim=self.bim)
        return adv
