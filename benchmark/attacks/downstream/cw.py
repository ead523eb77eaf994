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

import torch
import torchattacks

from ..checks import perturbation_norm
from .base import TorchattacksAttack, keep_within_l2


class CW(TorchattacksAttack):
    name = "cw"
    eps_independent = True

    @property
    def cs(self) -> tuple[float, ...]:
        c = dict(self.cell.params).get("c", 1.0)
        return tuple(float(v) for v in (c if isinstance(c, (tuple, list)) else (c,)))

    def build(self, c: float = 1.0) -> torchattacks.Attack:
        if self.cell.norm != "L2":
            raise ValueError("CW is an L2 attack")
        p = dict(self.cell.params)
        return torchattacks.CW(self.model, c=c, kappa=p.get("kappa", 0.0), steps=self.cell.steps,
                               lr=p.get("lr", 0.01))

    def _attack(self, x, y, sample_ids, seed):
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
        return keep_within_l2(x_adv, x, self.cell.eps)
