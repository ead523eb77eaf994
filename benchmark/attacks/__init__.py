"""Attacks: downstream (torchattacks, AutoAttack), reconstruction (MIM-loss attacks), threat-model checks."""
