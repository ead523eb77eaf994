"""BIM on the MIM loss (Kurakin et al.): iterated FGSM from the clean image, no random start."""
from __future__ import annotations

from ..registry import register_attack
from .base import MIMAttack


@register_attack
class MIMBIM(MIMAttack):
    name = "bim"

    def __init__(self, model, eps: float, *, steps: int = 10, alpha: float = 0.0, **settings) -> None:
        super().__init__(model, eps, steps=steps, alpha=alpha or eps / max(int(steps), 1), random_start=False,
                         **settings)
