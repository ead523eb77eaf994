"""BIM (Kurakin et al., 2017): iterated FGSM from the clean image (Linf), as torchattacks.BIM, with early stopping."""
from __future__ import annotations

import torch.nn as nn

from ..registry import register_attack
from .pgd import PGD


@register_attack
class BIM(PGD):
    name = "bim"
    cell_fields = ("steps", "alpha")
    bim = True

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 10, alpha: float = 0.0,
                 seed: int = 0, early_stop: bool = True) -> None:
        if norm != "Linf":
            raise ValueError("BIM is an Linf attack")
        super().__init__(model, eps, norm=norm, steps=steps, alpha=alpha or eps / max(int(steps), 1),
                         random_start=False, seed=seed, early_stop=early_stop)
