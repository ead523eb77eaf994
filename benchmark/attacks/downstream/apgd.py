"""APGD (Croce & Hein, 2020) on the classifier, through AutoAttack: APGD-CE (cross-entropy, 1 restart) and
APGD-T (the targeted DLR loss against each of the 9 most likely wrong classes), 100 iterations each, with the
step-size schedule and momentum of the paper, exactly as AutoAttack's 'standard' version runs them."""
from __future__ import annotations

import torch.nn as nn

from ..base import batch_seed
from ..registry import register_attack
from .autoattack import run_autoattack_parts
from .base import DownstreamAttack

__all__ = ["APGDCE", "APGDT"]


@register_attack
class APGDCE(DownstreamAttack):
    name = "apgd_ce"
    float_logits = True
    cell_fields = ("steps",)

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 100, seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.steps = int(steps)

    def _configure(self, aa) -> None:
        aa.apgd.n_iter = self.steps

    def forward(self, x, y, sample_ids):
        return run_autoattack_parts(self.model, x, y, eps=self.eps, norm=self.norm, parts=["apgd-ce"],
                                    seed=batch_seed(self.seed, sample_ids), configure=self._configure)


@register_attack
class APGDT(DownstreamAttack):
    name = "apgd_t"
    float_logits = True
    cell_fields = ("steps",)

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 100, n_targets: int = 9,
                 seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.steps, self.n_targets = int(steps), int(n_targets)

    def _configure(self, aa) -> None:
        aa.apgd_targeted.n_iter = self.steps
        aa.apgd_targeted.n_target_classes = self.n_targets

    def forward(self, x, y, sample_ids):
        return run_autoattack_parts(self.model, x, y, eps=self.eps, norm=self.norm, parts=["apgd-t"],
                                    seed=batch_seed(self.seed, sample_ids), configure=self._configure)
