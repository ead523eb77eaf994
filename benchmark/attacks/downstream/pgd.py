"""PGD (Madry et al., 2018): Linf (as torchattacks.PGD) or L2 (as torchattacks.PGDL2), with early stopping."""
from __future__ import annotations

from .base import DownstreamAttack
from .engine import iterative_attack


class PGD(DownstreamAttack):
    name = "pgd"
    bim = False

    def _attack(self, x, y, sample_ids, seed):
        c = self.cell
        adv, _ = iterative_attack(self.model, x, y, eps=c.eps, alpha=c.alpha, steps=c.steps, norm=c.norm,
                                  random=c.random_start and not self.bim, start=self.start, sample_ids=sample_ids,
                                  seed=seed, early_stop=self.early_stop, bim=self.bim)
        return adv
