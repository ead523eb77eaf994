"""PGD on the MIM loss (Madry et al.): random start, `steps` projected ascent steps, best iterate kept."""
from __future__ import annotations

from .base import MIMAttack


class MIMPGD(MIMAttack):
    name = "pgd"

    def __init__(self, model, eps: float, norm: str = "Linf", steps: int = 20, alpha: float | None = None,
                 **kwargs) -> None:
        super().__init__(model, eps, norm=norm, steps=steps, alpha=alpha, random_start=True, **kwargs)
