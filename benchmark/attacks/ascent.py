"""Projected gradient ascent: the one loop every iterative attack of mimbench runs (APGD shares its steps).

An attack configures the loop with
- an objective (`evaluate`): per-sample value, success flags and the gradient at the current iterates;
- a step rule: `ImageStep` iterates the image with torchattacks' arithmetic (so the downstream PGD / PGD-L2 /
  BIM give torchattacks' images exactly), `DeltaStep` iterates the perturbation (exact projection onto the ball
  and the image box, per-sample step sizes, pixel scopes: the reconstruction attacks and the hand-written
  adaptive ones); the two differ only in float rounding and in the L2 guard (torchattacks adds 1e-10 to the
  gradient norm, DeltaStep clamps it at 1e-12); `BallStep` iterates one perturbation shared by many images (a
  universal perturbation: projected onto the ball only, each image clipped to [0, 1] when it is added);
- what it returns per sample (`keep`): the last iterate, the best one by value, or, with `early_stop`, the first
  iterate that succeeds (that sample is then frozen, and dropped from the batch every `compact_every` steps so
  later steps cost only what is still standing).

Every evaluation costs one forward and one backward pass of the rows still attacked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Union

import torch

from ._geometry import ascent_direction, clip_to_image, project

Alpha = Union[float, torch.Tensor]
TORCHATTACKS_L2_GUARD = 1e-10  # torchattacks.PGDL2's eps_for_division

__all__ = ["BallStep", "DeltaStep", "Evaluation", "ImageStep", "StepRule", "projected_ascent"]


@dataclass
class Evaluation:
    """The objective at the iterates of the rows evaluated: value (ranks iterates), success, gradient."""

    value: Optional[torch.Tensor] = None      # per sample, higher is better for the attacker
    success: Optional[torch.Tensor] = None    # per sample bool (early stop)
    grad: Optional[torch.Tensor] = None       # d objective / d iterate


class StepRule(Protocol):
    def image(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The attacked image of iterate `z` of clean images `x`."""

    def step(self, x: torch.Tensor, z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The next iterate: one ascent step from `z`, projected back into the threat model."""


@dataclass
class ImageStep:
    """torchattacks' arithmetic, iterating the image: PGD (Linf), PGDL2 (L2) and BIM's own clipping (`bim`)."""

    eps: float
    alpha: float
    norm: str = "Linf"
    bim: bool = False

    def image(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z

    def step(self, x: torch.Tensor, z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        eps, alpha = self.eps, self.alpha
        if self.norm == "Linf":
            adv = z + alpha * grad.sign()
            if self.bim:  # torchattacks.BIM's clipping, written as it writes it
                a = torch.clamp(x - eps, min=0)
                b = (adv >= a).float() * adv + (adv < a).float() * a
                c = (b > x + eps).float() * (x + eps) + (b <= x + eps).float() * b
                return torch.clamp(c, max=1)
            delta = torch.clamp(adv - x, min=-eps, max=eps)
            return torch.clamp(x + delta, min=0, max=1)
        n = z.shape[0]
        grad_norms = torch.norm(grad.view(n, -1), p=2, dim=1) + TORCHATTACKS_L2_GUARD
        adv = z + alpha * grad / grad_norms.view(n, 1, 1, 1)
        delta = adv - x
        delta_norms = torch.norm(delta.view(n, -1), p=2, dim=1)
        factor = torch.min(eps / delta_norms, torch.ones_like(delta_norms))
        return torch.clamp(x + delta * factor.view(-1, 1, 1, 1), min=0, max=1)


@dataclass
class DeltaStep:
    """Iterates the perturbation: steepest-ascent step of the norm, projection onto the ball, clip to [0, 1].

    `alpha` is a float or one value per sample; `scope` (0/1 pixels) restricts the step to part of the image.
    """

    eps: float
    alpha: Alpha
    norm: str = "Linf"
    scope: Optional[torch.Tensor] = None

    def image(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x + z

    def step(self, x: torch.Tensor, z: torch.Tensor, grad: torch.Tensor, alpha: Optional[Alpha] = None
             ) -> torch.Tensor:
        alpha = self.alpha if alpha is None else alpha
        if self.scope is not None:
            grad = grad * self.scope
        if torch.is_tensor(alpha):
            alpha = alpha.view(-1, *([1] * (x.dim() - 1)))
        return clip_to_image(x, project(z + alpha * ascent_direction(grad, self.norm), self.eps, self.norm))


@dataclass
class BallStep:
    """Iterates a perturbation that is not tied to one image (a universal perturbation): a steepest-ascent step of
    the norm and the projection onto the eps-ball; the images it is added to are clipped to [0, 1] by the caller."""

    eps: float
    alpha: float
    norm: str = "Linf"

    def image(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (x + z).clamp(0, 1)

    def step(self, x: torch.Tensor, z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return project(z + self.alpha * ascent_direction(grad, self.norm), self.eps, self.norm)


Evaluate = Callable[[torch.Tensor, torch.Tensor, bool], Evaluation]


def projected_ascent(evaluate: Evaluate, x: torch.Tensor, z: torch.Tensor, rule: StepRule, *, steps: int,
                     keep: str = "last", early_stop: bool = False, compact_every: Optional[int] = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `steps` ascent steps from iterates `z` of clean images `x`; returns (iterates kept, succeeded).

    `evaluate(z_rows, rows, need_grad)` gives the objective at the iterates of the batch rows `rows`.
    `keep`: 'last' (the final iterate; with early stop, succeeded samples keep their first successful iterate),
    or 'best' (the iterate of highest value; the final iterate is evaluated too). `early_stop`: a sample is
    frozen at its first successful iterate; `compact_every` k drops frozen rows from the batch every k steps
    (None: they stay in the batch, unchanged, for objectives that couple the samples of a batch).
    """
    if keep not in ("last", "best"):
        raise ValueError(f"keep must be 'last' or 'best', got {keep!r}")
    n = z.shape[0]
    result = z.clone()
    succeeded = torch.zeros(n, dtype=torch.bool, device=z.device)
    best: Optional[torch.Tensor] = None
    rows = torch.arange(n, device=z.device)
    cur, xs = z, x
    for k in range(steps + 1):
        last = k == steps
        if last and keep == "last" and not early_stop:
            break  # the final iterate is returned without being evaluated
        if last and early_stop and compact_every:
            live = ~succeeded[rows]
            rows, cur, xs = rows[live], cur[live], xs[live]
        if len(rows) == 0:
            break
        ev = evaluate(cur, rows, not last)
        if keep == "best":
            if best is None:
                best = ev.value.clone()
            else:
                better = ev.value > best
                best = torch.where(better, ev.value, best)
                result[better] = cur[better]
        if early_stop:
            hit = ev.success & ~succeeded[rows]
            result[rows[hit]] = cur[hit]
            succeeded[rows[hit]] = True
        if last:
            break
        grad = ev.grad
        if early_stop:
            frozen = succeeded[rows]
            if compact_every and (k + 1) % compact_every == 0:
                if bool(frozen.all()):
                    rows = rows[:0]
                    break
                if bool(frozen.any()):
                    keep_rows = ~frozen
                    rows, cur, xs, grad = rows[keep_rows], cur[keep_rows], xs[keep_rows], grad[keep_rows]
                    frozen = frozen[keep_rows]
            elif not compact_every and bool(frozen.all()):
                break
            cur = torch.where(frozen.view(-1, *([1] * (cur.dim() - 1))), cur, rule.step(xs, cur, grad))
        else:
            cur = rule.step(xs, cur, grad)
    if keep == "last" and len(rows):
        live = ~succeeded[rows]
        result[rows[live]] = cur[live]
    return result, succeeded
