"""BIM on the MIM loss (Kurakin et al.): iterated FGSM from the clean image, no random start."""
from __future__ import annotations

from .base import MIMAttack


class MIMBIM(MIMAttack):
    name = "bim"

    def __init__(self, model, eps: float, norm: str = "Linf", steps: int = 10, alpha: float | None = None,
                 **kwargs) -> None:
        super().__init__(model, eps, norm=norm, steps=steps, alpha=alpha if alpha is not None else eps / steps,
                         random_start=False, **kwargs)
