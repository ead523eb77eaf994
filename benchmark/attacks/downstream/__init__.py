"""Downstream attacks on classifiers: torchattacks (FGSM, BIM, PGD, PGD-L2, CW, Square), AutoAttack, adaptive.

One attack per file behind `DownstreamAttack` (base.py); `build_downstream_attack` turns a suite cell into one.
"""
from __future__ import annotations

import torch.nn as nn

from .autoattack import AutoAttack, autoattack_backend
from .base import DownstreamAttack, batch_seed, run_seeded, seeded
from .bim import BIM
from .cw import CW
from .engine import iterative_attack
from .feature_pgd import FeaturePGD
from .fgsm import FGSM
from .mi_pgd import MIPGD
from .pgd import PGD
from .square import Square

DOWNSTREAM_ATTACKS: dict[str, type[DownstreamAttack]] = {
    "fgsm": FGSM, "bim": BIM, "pgd": PGD, "cw": CW, "autoattack": AutoAttack, "square": Square,
    "feature_pgd": FeaturePGD, "mi_pgd": MIPGD,
}


def build_downstream_attack(model: nn.Module, cell, **options) -> DownstreamAttack:
    """The downstream attack a suite cell describes, for a classifier returning logits (options: see the base)."""
    if cell.impl not in DOWNSTREAM_ATTACKS:
        raise KeyError(f"no downstream implementation of '{cell.impl}' "
                       f"(known: {', '.join(sorted(DOWNSTREAM_ATTACKS))})")
    return DOWNSTREAM_ATTACKS[cell.impl](model, cell, **options)


__all__ = ["AutoAttack", "BIM", "CW", "DOWNSTREAM_ATTACKS", "DownstreamAttack", "FGSM", "FeaturePGD", "MIPGD", "PGD",
           "Square", "autoattack_backend", "batch_seed", "build_downstream_attack", "iterative_attack", "run_seeded", "seeded"]
