"""FGSM (Goodfellow et al., 2015) through torchattacks: one signed-gradient step of size eps (Linf)."""
from __future__ import annotations

import torchattacks

from .base import TorchattacksAttack


class FGSM(TorchattacksAttack):
    name = "fgsm"

    def build(self) -> torchattacks.Attack:
        if self.cell.norm != "Linf":
            raise ValueError("FGSM is an Linf attack")
        return torchattacks.FGSM(self.model, eps=self.cell.eps)
