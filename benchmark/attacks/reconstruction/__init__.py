"""Reconstruction attacks: maximise the MIM loss of the attacked input against the clean image.

One attack per file behind `MIMAttack` (base.py); `build_reconstruction_attack` turns a suite cell into one.
"""
from __future__ import annotations

from .apgd import MIMAPGD
from .base import MIMAttack, mim_attack_loss
from .bim import MIMBIM
from .feature_pgd import MIMFeaturePGD
from .fgsm import MIMFGSM
from .mi_pgd import MIMMIPGD
from .noise import MIMRandomNoise
from .pgd import MIMPGD

RECONSTRUCTION_ATTACKS: dict[str, type[MIMAttack]] = {
    "fgsm": MIMFGSM, "bim": MIMBIM, "pgd": MIMPGD, "apgd": MIMAPGD, "feature_pgd": MIMFeaturePGD,
    "mi_pgd": MIMMIPGD, "random_noise": MIMRandomNoise,
}


def build_reconstruction_attack(model, cell, seed: int = 0) -> MIMAttack:
    """The reconstruction attack a suite cell describes, for a MIM model."""
    if cell.impl not in RECONSTRUCTION_ATTACKS:
        raise KeyError(f"no reconstruction implementation of '{cell.impl}' "
                       f"(known: {', '.join(sorted(RECONSTRUCTION_ATTACKS))})")
    return RECONSTRUCTION_ATTACKS[cell.impl].from_cell(model, cell, seed)


__all__ = ["MIMAPGD", "MIMAttack", "MIMBIM", "MIMFGSM", "MIMFeaturePGD", "MIMMIPGD", "MIMPGD", "MIMRandomNoise",
           "RECONSTRUCTION_ATTACKS", "build_reconstruction_attack", "mim_attack_loss"]
