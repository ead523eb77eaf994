"""The iterative gradient attacks of the downstream matrix (BIM, PGD, PGD-L2), with early stopping.

Step for step this is torchattacks' PGD / PGDL2 / BIM arithmetic (cross-entropy ascent, sign or L2-normalised
step, projection onto the ball and [0, 1]); tests check that it returns exactly torchattacks' images when early
stopping is off and the random start is drawn as torchattacks draws it. What it adds, for speed:
- a sample is frozen at the first iterate that misclassifies it (that iterate is kept: the best possible result
  for robust accuracy) and leaves the batch, so later steps cost only what is still standing;
- random starts are drawn per sample id (seed, sample id), so no number depends on the batch a sample is in.
The batch shrinks every `compact_every` steps (on CUDA not at every step, to spare host syncs); in between,
finished samples are held in place by a mask.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._geometry import random_start

_EPS_FOR_DIVISION = 1e-10  # torchattacks.PGDL2's default


def torch_style_start(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The random start torchattacks draws from torch's RNG (used to check equality with it)."""
    if norm == "Linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    delta = torch.empty_like(x).normal_()
    n = delta.view(x.size(0), -1).norm(p=2, dim=1).view(x.size(0), 1, 1, 1)
    r = torch.zeros_like(n).uniform_(0, 1)
    return delta * (r / n * eps)


def _step(adv: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float, norm: str,
          bim: bool) -> torch.Tensor:
    n = adv.shape[0]
    if norm == "Linf":
        adv = adv + alpha * grad.sign()
        if bim:  # torchattacks.BIM's clipping, written as it writes it
            a = torch.clamp(x - eps, min=0)
            b = (adv >= a).float() * adv + (adv < a).float() * a
            c = (b > x + eps).float() * (x + eps) + (b <= x + eps).float() * b
            return torch.clamp(c, max=1)
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        return torch.clamp(x + delta, min=0, max=1)
    grad_norms = torch.norm(grad.view(n, -1), p=2, dim=1) + _EPS_FOR_DIVISION
    adv = adv + alpha * grad / grad_norms.view(n, 1, 1, 1)
    delta = adv - x
    delta_norms = torch.norm(delta.view(n, -1), p=2, dim=1)
    factor = torch.min(eps / delta_norms, torch.ones_like(delta_norms))
    return torch.clamp(x + delta * factor.view(-1, 1, 1, 1), min=0, max=1)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


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
    result = adv.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    active = torch.arange(len(x), device=x.device)   # rows of `x` still being attacked
    cur, xa, ya = adv, x, y
    frozen = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # within `active`, done but not yet dropped
    was_training = model.training
    model.eval()
    try:
        for step in range(steps):
            cur = cur.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = model(cur)
                cost = F.cross_entropy(logits, ya)
                grad, = torch.autograd.grad(cost, cur)
            if early_stop:
                # The iterate just evaluated misclassifies these: keep it, stop attacking them.
                hit = (logits.detach().argmax(1) != ya) & ~frozen
                result[active[hit]] = cur.detach()[hit]
                broken[active[hit]] = True
                frozen = frozen | hit
                if (step + 1) % compact_every == 0:
                    keep = ~frozen
                    if not bool(keep.any()):
                        active = active[:0]
                        break
                    if not bool(keep.all()):
                        active, cur, xa, ya, grad = active[keep], cur[keep], xa[keep], ya[keep], grad[keep]
                        frozen = frozen[keep]
            new = _step(cur.detach(), xa, grad, eps, alpha, norm, bim)
            cur = torch.where(frozen.view(-1, 1, 1, 1), cur.detach(), new) if early_stop else new
        if len(active):
            last = cur.detach()
            live = ~frozen
            result[active[live]] = last[live]
            if early_stop:
                broken[active[live]] = _predict(model, last[live]) != ya[live]
        if not early_stop:
            broken = _predict(model, result) != y
    finally:
        model.train(was_training)
    return result.detach(), broken
