"""Reconstruction attacks: maximise the MIM loss of the attacked input against the clean image."""
from .base import MIMAttack, mim_attack_loss
from .bim import MIMBIM
from .fgsm import MIMFGSM
from .pgd import MIMPGD

RECONSTRUCTION_ATTACKS = {"fgsm": MIMFGSM, "bim": MIMBIM, "pgd": MIMPGD}

__all__ = ["MIMAttack", "MIMBIM", "MIMFGSM", "MIMPGD", "RECONSTRUCTION_ATTACKS", "mim_attack_loss"]
