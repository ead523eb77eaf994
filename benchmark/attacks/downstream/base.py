"""Base of the downstream attacks: untargeted attacks on a classifier (labels = ground truth), within budget.

Each attack (one per file) wraps a library attack (torchattacks, AutoAttack) or, for the attacks no library
has, runs the shared ascent loop (`benchmark.attacks.ascent`). `within_budget` maps an attack's raw result into
the cell's threat model (CW is a minimum-norm attack: a perturbation larger than the budget is not a success, so
that sample keeps its clean image). The runner checks every batch `perturb` returns.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn

from .._geometry import clip_to_image, random_start
from ..ascent import DeltaStep, Evaluation, projected_ascent
from ..base import Attack
from ..checks import perturbation_norm

__all__ = ["DownstreamAttack", "FloatLogits", "HandwrittenPGD", "TorchattacksAttack", "features_and_logits",
           "keep_within_l2"]


class FloatLogits(nn.Module):
    """A classifier whose logits are float32 whatever the autocast: attack libraries mix the logits with float32
    tensors of their own (torchattacks.Square's index_put fails on bf16 logits under `--amp bf16`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float()


class DownstreamAttack(Attack):
    """An untargeted attack on a classifier returning logits."""

    target = "downstream"
    eps_independent: ClassVar[bool] = False  # True: the raw adversarial images do not depend on eps (CW)
    float_logits: ClassVar[bool] = False     # True: the model is wrapped in FloatLogits (libraries needing float32)
    stops_early: ClassVar[bool] = False      # True: takes `early_stop` (stop attacking samples already broken)

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", seed: int = 0) -> None:
        super().__init__(FloatLogits(model) if self.float_logits else model, eps, norm=norm, seed=seed)

    def within_budget(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The raw result mapped into the threat model (identity for attacks that stay in their ball)."""
        return x_adv

    def perturb(self, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """The attack then `within_budget`: the images the cell's threat model allows."""
        return self.within_budget(self(x, y, sample_ids), x)


class TorchattacksAttack(DownstreamAttack):
    """A torchattacks attack (subclasses say which, with which arguments, in `build`)."""

    float_logits = True

    def build(self):
        raise NotImplementedError

    def forward(self, x, y, sample_ids):
        return self.build()(x, y)


def keep_within_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Samples whose perturbation exceeds the L2 budget keep their clean image (the attack failed there)."""
    over = perturbation_norm(x_adv - x, "L2") > eps
    if bool(over.any()):
        x_adv = x_adv.clone()
        x_adv[over] = x[over]
    return x_adv


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled pre-logit features and logits in one pass (zoo classifiers: `features(x)`, then `head`)."""
    feats = model.features(x)
    return feats, model.head(feats)


class HandwrittenPGD(DownstreamAttack):
    """PGD on a custom objective, for the attacks no library has (the adaptive ones), in the shared ascent loop.

    Random start per sample id; `steps` steps of `alpha` (default 2.5 * eps / steps); a sample is frozen at the
    first iterate that misclassifies it (that iterate is returned), the others return their last iterate.
    Frozen samples stay in the batch (unchanged), since an objective may couple the samples of a batch.
    Subclasses give `_context` (computed once on the clean batch) and `_objective` (logits, scalar to ascend).
    """

    cell_fields = ("steps", "alpha")

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 20, alpha: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.steps = int(steps)
        self.alpha = float(alpha) if alpha else 2.5 * self.eps / max(self.steps, 1)

    def _context(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        return {}

    def _objective(self, x_adv: torch.Tensor, y: torch.Tensor, ctx: dict) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x, y, sample_ids):
        with torch.no_grad():
            ctx = self._context(x, y)

        def evaluate(delta: torch.Tensor, rows: torch.Tensor, need_grad: bool) -> Evaluation:
            with torch.enable_grad() if need_grad else torch.no_grad():
                d = delta.detach().requires_grad_(need_grad)
                logits, scalar = self._objective(x + d, y, ctx)
                grad = torch.autograd.grad(scalar, d)[0] if need_grad else None
            return Evaluation(success=logits.detach().argmax(1) != y, grad=grad)

        delta = clip_to_image(x, random_start(x, self.eps, self.norm, sample_ids, self.seed))
        rule = DeltaStep(self.eps, self.alpha, self.norm)
        delta, _ = projected_ascent(evaluate, x, delta, rule, steps=self.steps, early_stop=True)
        return x + delta
