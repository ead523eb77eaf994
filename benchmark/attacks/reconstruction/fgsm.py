"""FGSM on the MIM loss (Goodfellow et al.): one step of size eps from the clean image."""
from __future__ import annotations

from .base import MIMAttack


class MIMFGSM(MIMAttack):
    name = "fgsm"

    def __init__(self, model, eps: float, norm: str = "Linf", **kwargs) -> None:
        kwargs.pop("steps", None), kwargs.pop("alpha", None)
        super().__init__(model, eps, norm=norm, steps=1, alpha=eps, random_start=False, keep_best=False, **kwargs)
