"""Downstream attacks on classifiers: torchattacks (FGSM, BIM, PGD, PGD-L2, CW, Square), AutoAttack, adaptive.

One attack per file behind `DownstreamAttack` (base.py), registered by name (`benchmark.attacks.registry`).
"""
from __future__ import annotations

from .apgd import APGDCE, APGDT
from .autoattack import AutoAttack, autoattack_backend
from .base import DownstreamAttack
from .bim import BIM
from .cw import CW
from .feature_pgd import FeaturePGD
from .fgsm import FGSM
from .mi_pgd import MIPGD
from .pgd import PGD, iterative_attack
from .square import Square

__all__ = ["APGDCE", "APGDT", "AutoAttack", "BIM", "CW", "DownstreamAttack", "FGSM", "FeaturePGD", "MIPGD", "PGD", "Square",
           "autoattack_backend", "iterative_attack"]
