"""Carlini-Wagner L2 (2017) through torchattacks, at a few values of c, counted within the cell's L2 budget.

CW minimises ||delta||_2^2 + c * margin with Adam in tanh space and returns, per sample, the smallest
misclassifying perturbation it found (or the clean image). torchattacks has no binary search over c, and no
single c suits every sample (c = 1 finds small perturbations but gives up on hard samples; c = 10 breaks more
samples with larger perturbations), so the attack runs torchattacks.CW once per c of the cell and keeps, per
sample, the smallest successful perturbation: a coarse stand-in for the paper's search over c. CW has no
budget, so one run serves every eps of a suite (`eps_independent`: the runner reuses it) and a sample counts
as broken at eps only when its perturbation is within eps (`within_budget` gives the others their clean image).
Known limit of the tanh parametrisation: pixels exactly at 0 or 1 cannot move.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn
import torchattacks

from ..checks import perturbation_norm
from ..registry import register_attack
from .base import TorchattacksAttack, keep_within_l2


@register_attack
class CW(TorchattacksAttack):
    name = "cw"
    cell_fields = ("steps",)
    eps_independent = True

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "L2", steps: int = 100,
                 c: Union[float, Sequence[float]] = 1.0, kappa: float = 0.0, lr: float = 0.01, seed: int = 0) -> None:
        if norm != "L2":
            raise ValueError("CW is an L2 attack")
        super().__init__(model, eps, norm=norm, seed=seed)
        self.steps, self.kappa, self.lr = int(steps), float(kappa), float(lr)
        self.cs = tuple(float(v) for v in (c if isinstance(c, (tuple, list)) else (c,)))

    def build(self, c: float = 1.0) -> torchattacks.Attack:
        return torchattacks.CW(self.model, c=c, kappa=self.kappa, steps=self.steps, lr=self.lr)

    def forward(self, x, y, sample_ids):
        best = x.clone()
        best_norm = torch.full((len(x),), float("inf"), device=x.device)
        for c in self.cs:
            adv = self.build(c)(x, y)
            with torch.no_grad():
                broken = self.model(adv).argmax(1) != y
            norms = perturbation_norm(adv - x, "L2")
            better = broken & (norms < best_norm)
            best[better], best_norm[better] = adv[better], norms[better]
        return best

    def within_budget(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return keep_within_l2(x_adv, x, self.eps)
