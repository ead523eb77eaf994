"""Reconstruction attacks: maximise the MIM loss of the attacked input against the clean image.

One attack per file behind `MIMAttack` (base.py), registered by name (`benchmark.attacks.registry`).
"""
from __future__ import annotations

from .apgd import MIMAPGD
from .base import MIMAttack, mim_attack_loss
from .bim import MIMBIM
from .feature_pgd import MIMFeaturePGD
from .fgsm import MIMFGSM
from .l4a import MIML4A
from .mi_pgd import MIMMIPGD
from .noise import MIMRandomNoise
from .pgd import MIMPGD
from .universal import UniversalPerturbation

__all__ = ["MIMAPGD", "MIMAttack", "MIMBIM", "MIMFGSM", "MIMFeaturePGD", "MIML4A", "MIMMIPGD", "MIMPGD",
           "MIMRandomNoise", "UniversalPerturbation", "mim_attack_loss"]
