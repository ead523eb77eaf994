"""BIM (Kurakin et al., 2017): iterated FGSM from the clean image (Linf), as torchattacks.BIM, with early stopping."""
from __future__ import annotations

from .pgd import PGD


class BIM(PGD):
    name = "bim"
    bim = True

    def _attack(self, x, y, sample_ids, seed):
        if self.cell.norm != "Linf":
            raise ValueError("BIM is an Linf attack")
        return super()._attack(x, y, sample_ids, seed)
