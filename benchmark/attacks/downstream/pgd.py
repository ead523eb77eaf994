"""PGD (Madry et al., 2018) through torchattacks: torchattacks.PGD (Linf) or torchattacks.PGDL2 (L2)."""
from __future__ import annotations

import torchattacks

from .base import TorchattacksAttack


class PGD(TorchattacksAttack):
    name = "pgd"

    def build(self) -> torchattacks.Attack:
        c = self.cell
        if c.norm == "Linf":
            return torchattacks.PGD(self.model, eps=c.eps, alpha=c.alpha, steps=c.steps, random_start=c.random_start)
        return torchattacks.PGDL2(self.model, eps=c.eps, alpha=c.alpha, steps=c.steps, random_start=c.random_start)
