"""Reconstruction attacks: maximise the MIM loss of the attacked input against the clean image.

One attack per file behind `MIMAttack` (base.py), registered by name (`benchmark.attacks.registry`).
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

__all__ = ["MIMAPGD", "MIMAttack", "MIMBIM", "MIMFGSM", "MIMFeaturePGD", "MIMMIPGD", "MIMPGD", "MIMRandomNoise",
           "mim_attack_loss"]
