"""FGSM (Goodfellow et al., 2015) through torchattacks: one signed-gradient step of size eps (Linf)."""
from __future__ import annotations

import torch.nn as nn
import torchattacks

from ..registry import register_attack
from .base import TorchattacksAttack


@register_attack
class FGSM(TorchattacksAttack):
    name = "fgsm"

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", seed: int = 0) -> None:
        if norm != "Linf":
            raise ValueError("FGSM is an Linf attack")
        super().__init__(model, eps, norm=norm, seed=seed)

    def build(self) -> torchattacks.Attack:
        return torchattacks.FGSM(self.model, eps=self.eps)
