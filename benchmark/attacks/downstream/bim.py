"""BIM (Kurakin et al., 2017) through torchattacks: iterated FGSM from the clean image (Linf)."""
from __future__ import annotations

import torchattacks

from .base import TorchattacksAttack


class BIM(TorchattacksAttack):
    name = "bim"

    def build(self) -> torchattacks.Attack:
        if self.cell.norm != "Linf":
            raise ValueError("BIM is an Linf attack")
        return torchattacks.BIM(self.model, eps=self.cell.eps, alpha=self.cell.alpha, steps=self.cell.steps)
