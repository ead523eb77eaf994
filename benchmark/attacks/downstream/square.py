"""Square Attack (Andriushchenko et al., 2020) through torchattacks: score-based black-box, Linf or L2.

Not part of the pgd suite's matrix: the runner's gradient-masking check runs it on the samples that survive
every white-box attack of a budget; if it breaks some, the white-box gradients are not to be trusted.
"""
from __future__ import annotations

import torch.nn as nn
import torchattacks

from ..base import batch_seed
from ..registry import register_attack
from .base import TorchattacksAttack


@register_attack
class Square(TorchattacksAttack):
    name = "square"

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", n_queries: int = 1000,
                 seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.n_queries = int(n_queries)

    def build(self) -> torchattacks.Attack:
        return torchattacks.Square(self.model, norm=self.norm, eps=self.eps, n_queries=self.n_queries, n_restarts=1,
                                   p_init=0.8, loss="margin", resc_schedule=True, seed=0)

    def forward(self, x, y, sample_ids):
        attack = self.build()
        attack.seed = batch_seed(self.seed, sample_ids)  # torchattacks.Square seeds torch itself: the batch's seed
        return attack(x, y)
