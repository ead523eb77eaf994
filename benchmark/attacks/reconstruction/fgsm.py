"""FGSM on the MIM loss (Goodfellow et al.): one step of size eps from the clean image."""
from __future__ import annotations

from ..registry import register_attack
from .base import MIMAttack


@register_attack
class MIMFGSM(MIMAttack):
    name = "fgsm"
    cell_fields = ("threat", "scope", "eot_samples")

    def __init__(self, model, eps: float, **settings) -> None:
        super().__init__(model, eps, steps=1, alpha=eps, random_start=False, keep_best=False, **settings)
