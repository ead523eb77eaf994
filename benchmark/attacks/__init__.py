"""Attacks: downstream (torchattacks, AutoAttack, adaptive), reconstruction (MIM-loss attacks, adaptive),
threat-model checks (checks.py), gradient-masking checks (gradient_masking.py) and a differentiable HSIC
(hsic.py, shared with the trainer's MIMIR defense)."""
