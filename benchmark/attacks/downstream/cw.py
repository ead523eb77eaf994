"""Carlini-Wagner L2 (2017) through torchattacks, counted within the cell's L2 budget.

CW minimises ||delta||_2^2 + c * margin with Adam in tanh space and returns, per sample, the smallest
misclassifying perturbation it found (or the clean image). It has no budget, so one run serves every eps of a
suite (`eps_independent`: the runner reuses it) and a sample counts as broken at eps only when its
perturbation is within eps. Settings (c, kappa, steps, lr) come from the cell; no binary search over c
(torchattacks has none). Known limit of the tanh parametrisation: pixels exactly at 0 or 1 cannot move.
"""
from __future__ import annotations

import torch
import torchattacks

from .base import TorchattacksAttack, keep_within_l2


class CW(TorchattacksAttack):
    name = "cw"
    eps_independent = True

    def build(self) -> torchattacks.Attack:
        if self.cell.norm != "L2":
            raise ValueError("CW is an L2 attack")
        p = dict(self.cell.params)
        return torchattacks.CW(self.model, c=p.get("c", 1.0), kappa=p.get("kappa", 0.0), steps=self.cell.steps,
                               lr=p.get("lr", 0.01))

    def within_budget(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return keep_within_l2(x_adv, x, self.cell.eps)
