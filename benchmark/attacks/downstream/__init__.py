"""Downstream attacks on classifiers: torchattacks (FGSM, BIM, PGD, PGD-L2, CW) and AutoAttack."""
from .torchattacks_adapter import DOWNSTREAM_ATTACKS, build_downstream_attack, run_seeded

__all__ = ["DOWNSTREAM_ATTACKS", "build_downstream_attack", "run_seeded"]
