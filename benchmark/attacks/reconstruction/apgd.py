"""APGD on the MIM loss (Croce & Hein, 2020, Algorithm 1): PGD with momentum and an adaptive step size.

AutoAttack's APGD only takes classifier losses (cross-entropy, DLR), so its algorithm is written here for the
MIM objective; it is the reconstruction side of the `autoattack` suite. Parameter-free like the original:
the step starts at 2*eps and is halved at checkpoints where the loss stalled (fewer than rho of the steps
since the last checkpoint increased it, or neither the step nor the best loss changed); after a halving the
iterate restarts from the best point. Per-sample state throughout; random start per sample id; the best
iterate is returned. One forward and one backward pass per iteration.
"""
from __future__ import annotations

import math

import torch

from .._geometry import clip_to_image, project
from ..ascent import DeltaStep
from ..registry import register_attack
from .base import MIMAttack


def checkpoints(n_iter: int) -> list[int]:
    """Iterations at which the step size is reconsidered: ceil(p_j * n_iter), p_0 = 0, p_1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(q * n_iter, 6)) for q in p[1:]})


@register_attack
class MIMAPGD(MIMAttack):
    name = "apgd"

    cell_fields = ("steps", "threat", "scope", "eot_samples")

    def __init__(self, model, eps: float, *, steps: int = 100, rho: float = 0.75, momentum: float = 0.75,
                 **settings) -> None:
        super().__init__(model, eps, steps=steps, alpha=2 * eps, random_start=True, keep_best=True, **settings)
        self.rho, self.momentum = float(rho), float(momentum)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        marks = set(checkpoints(self.steps))
        scope = self._scope_pixels(x, mask)
        groups = self._groups(x, mask, sample_ids)
        rule = DeltaStep(self.eps, self.alpha, self.norm, scope)   # the shared ascent step, per-sample sizes
        delta = self._init_delta(x, sample_ids, scope)
        value, grad = self._evaluate(delta, x, groups)
        best, best_delta, best_grad = value.clone(), delta.clone(), grad.clone()
        eta = torch.full((n,), self.alpha, dtype=x.dtype, device=x.device)
        prev_delta = delta.clone()
        prev_value = value.clone()
        increases = torch.zeros(n, dtype=x.dtype, device=x.device)
        last_mark, eta_at_mark, best_at_mark = 0, eta.clone(), best.clone()
        for k in range(1, self.steps):
            z = rule.step(x, delta, grad, alpha=eta)
            a = 1.0 if k == 1 else self.momentum
            new = clip_to_image(x, project(delta + a * (z - delta) + (1 - a) * (delta - prev_delta), self.eps,
                                           self.norm))
            prev_delta, delta = delta, new
            value, grad = self._evaluate(delta, x, groups)
            increases += (value > prev_value).to(x.dtype)
            prev_value = value.clone()
            better = value > best
            best = torch.where(better, value, best)
            best_delta[better], best_grad[better] = delta[better], grad[better]
            if k in marks:
                stalled = increases < self.rho * (k - last_mark)
                stuck = (eta == eta_at_mark) & (best == best_at_mark)
                halve = stalled | stuck
                eta = torch.where(halve, eta / 2, eta)
                delta[halve], grad[halve] = best_delta[halve], best_grad[halve]
                prev_delta[halve] = best_delta[halve]
                increases.zero_()
                last_mark, eta_at_mark, best_at_mark = k, eta.clone(), best.clone()
        return (x + best_delta).clamp(0, 1)
