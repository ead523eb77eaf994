"""Square Attack (Andriushchenko et al., 2020), score-based black-box, Linf or L2, as AutoAttack runs it
(p_init 0.8, margin loss, 1 restart; `n_queries`, 5000 in AutoAttack's 'standard' version).

In the `standard` suite it is the cascade's last, black-box step; in the other suites the runner's
gradient-masking check runs it on the samples that survive every white-box attack of a budget.
"""
from __future__ import annotations

import torch.nn as nn

from ..base import batch_seed
from ..registry import register_attack
from .autoattack import run_autoattack_parts
from .base import DownstreamAttack


@register_attack
class Square(DownstreamAttack):
    name = "square"
    float_logits = True

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", n_queries: int = 5000,
                 seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.n_queries = int(n_queries)

    def _configure(self, aa) -> None:
        aa.square.n_queries = self.n_queries

    def forward(self, x, y, sample_ids):
        return run_autoattack_parts(self.model, x, y, eps=self.eps, norm=self.norm, parts=["square"],
                                    seed=batch_seed(self.seed, sample_ids), configure=self._configure)
