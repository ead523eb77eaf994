"""Square Attack (Andriushchenko et al., 2020) through torchattacks: score-based black-box, Linf or L2.

Not part of any suite's matrix: the runner's gradient-masking check runs it on the samples that survive every
white-box attack of a budget; if it breaks some, the white-box gradients are not to be trusted.
"""
from __future__ import annotations

import torchattacks

from .base import TorchattacksAttack, batch_seed


class Square(TorchattacksAttack):
    name = "square"

    def build(self) -> torchattacks.Attack:
        p = dict(self.cell.params)
        return torchattacks.Square(self.model, norm=self.cell.norm, eps=self.cell.eps,
                                   n_queries=int(p.get("n_queries", 1000)), n_restarts=1, p_init=0.8,
                                   loss="margin", resc_schedule=True, seed=0)

    def _attack(self, x, y, sample_ids, seed):
        attack = self.build()
        attack.seed = batch_seed(seed, sample_ids)  # torchattacks.Square seeds torch itself: the batch's seed
        return attack(x, y)
