"""Base of the reconstruction attacks: maximise a MIM model's loss against the CLEAN image.

No library attacks MIM losses, so these are written here, in torchattacks' shape (one attack per file,
one base class). Threat models:
- `aware`: the evaluation mask is known to the attacker and used for the gradient;
- `agnostic`: the gradient is averaged over K random masks (EoT) drawn from seeds the evaluation never uses;
  the attacker also picks its best iterate by that EoT average (it never sees the evaluation mask); the result
  is evaluated on the fixed mask.
Scopes: `all` pixels, `visible` patches only, `masked` patches only (a control: for MAE it changes nothing).
Random starts are drawn per sample id, so a sample's attack never depends on its batch.

Subclasses change the objective (`_context`, `_objective`: adaptive attacks) or the optimiser (`forward`:
APGD). Every step costs one forward and one backward pass of the batch (K of them for EoT, batched together
up to `max_batch` images per pass).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.models._common import patch_mask_to_pixels

from .._geometry import ascent_direction, clip_to_image, project, random_start
from ..ascent import DeltaStep, Evaluation, projected_ascent
from ..base import Attack, eval_mode

THREATS = ("aware", "agnostic")
SCOPES = ("all", "visible", "masked")
_EOT_SEED_OFFSET = 10_000  # EoT masks use seeds the evaluation never uses
DEFAULT_MAX_BATCH = 512    # images per forward pass when EoT masks are batched together

__all__ = ["MIMAttack", "SCOPES", "THREATS", "ascent_direction", "eval_mode", "mim_attack_loss", "project",
           "random_start"]


def mim_attack_loss(model: nn.Module, x_adv: torch.Tensor, x_clean: torch.Tensor, mask: torch.Tensor,
                    clean_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample loss the attacker maximises: the family's MIM loss of x_adv against the clean image.

    BEiT has no pixels: cross-entropy of the masked positions against the clean prediction's top-1 tokens.
    """
    if getattr(model, "family", "") == "beit":
        return token_loss(model.forward_mim(x_adv, mask).pred, clean_tokens, mask)
    return model.forward_mim(x_adv, mask, target=x_clean, reduction="none").loss


def token_loss(logits: torch.Tensor, clean_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample mean cross-entropy of the masked positions' logits against the clean top-1 tokens (BEiT)."""
    ce = F.cross_entropy(logits.flatten(0, 1), clean_tokens.flatten(), reduction="none").view(mask.shape)
    m = mask.to(ce.dtype)
    return (ce * m).sum(1) / m.sum(1)


@dataclass
class _MaskGroup:
    """Some of the attacker's masks, stacked: k masks x N samples, with the clean batch repeated k times."""

    k: int
    mask: torch.Tensor       # (k*N) x L
    x: torch.Tensor          # (k*N) x C x H x W, clean
    ctx: dict[str, Any]      # whatever the objective precomputes on the clean batch (tokens, features, ...)


class MIMAttack(Attack):
    """Projected gradient ascent on a MIM loss in the shared ascent loop; FGSM, BIM and PGD are settings of it."""

    name = "mim_attack"
    target = "reconstruction"
    cell_fields = ("steps", "alpha", "threat", "scope", "eot_samples")

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 10, alpha: float = 0.0,
                 random_start: bool = True, threat: str = "aware", scope: str = "all", eot_samples: int = 1,
                 seed: int = 0, keep_best: bool = True, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        """`alpha` 0: 2.5 * eps / steps; `keep_best`: return each sample's iterate of highest loss (else the last)."""
        super().__init__(model, eps, norm=norm, seed=seed)
        if threat not in THREATS or scope not in SCOPES:
            raise ValueError(f"threat must be one of {THREATS}, scope one of {SCOPES}")
        if threat == "agnostic" and scope != "all":
            raise ValueError("a mask-agnostic attacker does not know which patches are visible: scope must be 'all'")
        self.steps = int(steps)
        self.alpha = float(alpha) if alpha else 2.5 * self.eps / max(self.steps, 1)
        self.random_start, self.threat, self.scope = random_start, threat, scope
        self.eot_samples = max(int(eot_samples), 1) if threat == "agnostic" else 1
        self.keep_best, self.max_batch = keep_best, int(max_batch)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps:g}, norm={self.norm}, steps={self.steps}, "
                f"alpha={self.alpha:g}, random_start={self.random_start}, threat={self.threat}, scope={self.scope}, "
                f"eot={self.eot_samples})")

    # -- what the attacker knows
    def _scope_pixels(self, x: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        if self.scope == "all":
            return None
        p = self.model.patch_size
        pix = patch_mask_to_pixels(mask, p, (x.shape[2] // p, x.shape[3] // p)).to(x.dtype)
        return pix if self.scope == "masked" else 1 - pix

    def _gradient_masks(self, mask: torch.Tensor, sample_ids: torch.Tensor) -> list[torch.Tensor]:
        if self.threat == "aware":
            return [mask]
        return [self.model.make_mask(sample_ids, seed=self.seed + _EOT_SEED_OFFSET + k).to(mask.device)
                for k in range(self.eot_samples)]

    def _groups(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> list[_MaskGroup]:
        """The attacker's masks in groups of at most `max_batch` images per forward pass."""
        masks = self._gradient_masks(mask, sample_ids)
        per = max(1, self.max_batch // max(x.shape[0], 1))
        groups = []
        for i in range(0, len(masks), per):
            chunk = masks[i:i + per]
            m = torch.cat(chunk)
            xs = x.repeat(len(chunk), 1, 1, 1)
            groups.append(_MaskGroup(len(chunk), m, xs, self._context(xs, m)))
        return groups

    # -- the objective (adaptive attacks override these two)
    def _context(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        """Precomputed on the clean (stacked) batch once per attack: BEiT's clean tokens."""
        if getattr(self.model, "family", "") != "beit":
            return {}
        with torch.no_grad():
            return {"tokens": self.model.forward_mim(x, mask).pred.argmax(-1)}

    def _objective(self, x_adv: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                   ctx: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-sample value that ranks iterates, scalar whose gradient the attack ascends)."""
        per = mim_attack_loss(self.model, x_adv, x, mask, ctx.get("tokens"))
        return per, per.sum()

    def _evaluate(self, delta: torch.Tensor, x: torch.Tensor, groups: list[_MaskGroup],
                  need_grad: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Per-sample objective (averaged over the attacker's masks) and its gradient with respect to delta."""
        n, k_total = x.shape[0], sum(g.k for g in groups)
        value = torch.zeros(n, dtype=x.dtype, device=x.device)
        grad = torch.zeros_like(x) if need_grad else None
        for g in groups:
            with torch.enable_grad() if need_grad else torch.no_grad():
                d = delta.detach().requires_grad_(need_grad)
                x_adv = (x + d).repeat(g.k, 1, 1, 1) if g.k > 1 else x + d
                per, scalar = self._objective(x_adv, g.x, g.mask, g.ctx)
                if need_grad:
                    grad += torch.autograd.grad(scalar, d)[0]
            value += per.detach().view(g.k, n).sum(0)
        return value / k_total, (grad / k_total if need_grad else None)

    # -- the optimiser
    def _init_delta(self, x: torch.Tensor, sample_ids: torch.Tensor, scope: Optional[torch.Tensor]) -> torch.Tensor:
        delta = torch.zeros_like(x)
        if self.random_start:
            delta = random_start(x, self.eps, self.norm, sample_ids, self.seed)
            if scope is not None:
                delta = project(delta * scope, self.eps, self.norm)
        return clip_to_image(x, delta)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """Adversarial images for clean images `x` (in [0, 1]) under the evaluation `mask`."""
        scope = self._scope_pixels(x, mask)
        groups = self._groups(x, mask, sample_ids)
        delta = self._init_delta(x, sample_ids, scope)

        def evaluate(d: torch.Tensor, rows: torch.Tensor, need_grad: bool) -> Evaluation:
            value, grad = self._evaluate(d, x, groups, need_grad=need_grad)
            return Evaluation(value=value, grad=grad)

        rule = DeltaStep(self.eps, self.alpha, self.norm, scope)
        delta, _ = projected_ascent(evaluate, x, delta, rule, steps=self.steps,
                                    keep="best" if self.keep_best else "last")
        return (x + delta).clamp(0, 1)
