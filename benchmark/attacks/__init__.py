"""Attacks: downstream (torchattacks, AutoAttack, adaptive) and reconstruction (MIM-loss attacks, adaptive),
behind one base (`base.Attack`), run by one ascent loop (`ascent`), found by name (`registry`); plus the
threat-model checks (checks.py), the gradient-masking checks (gradient_masking.py) and a differentiable HSIC
(hsic.py, shared with the trainer's MIMIR defense)."""
from __future__ import annotations

from . import downstream, reconstruction  # noqa: F401  (registers every attack)
from .base import Attack
from .registry import DOWNSTREAM_ATTACKS, RECONSTRUCTION_ATTACKS, attack_registry, build_attack, register_attack

__all__ = ["Attack", "DOWNSTREAM_ATTACKS", "RECONSTRUCTION_ATTACKS", "attack_registry", "build_attack",
           "register_attack"]
