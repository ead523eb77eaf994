"""PGD on the MIM loss (Madry et al.): random start, `steps` projected ascent steps, best iterate kept."""
from __future__ import annotations

from ..registry import register_attack
from .base import MIMAttack


@register_attack
class MIMPGD(MIMAttack):
    name = "pgd"

    def __init__(self, model, eps: float, *, steps: int = 20, **settings) -> None:
        super().__init__(model, eps, steps=steps, random_start=True, **settings)
