"""The attacks by target and name: `@register_attack` on each attack class, `build_attack(model, cell)`."""
from __future__ import annotations

from typing import Any, TypeVar

import torch.nn as nn

from zoo.registries import Registry

from .base import Attack

A = TypeVar("A", bound=type)

DOWNSTREAM_ATTACKS: Registry[type[Attack]] = Registry("downstream attack")
RECONSTRUCTION_ATTACKS: Registry[type[Attack]] = Registry("reconstruction attack")
_BY_TARGET = {"downstream": DOWNSTREAM_ATTACKS, "reconstruction": RECONSTRUCTION_ATTACKS}

__all__ = ["DOWNSTREAM_ATTACKS", "RECONSTRUCTION_ATTACKS", "attack_registry", "build_attack", "register_attack"]


def attack_registry(target: str) -> Registry[type[Attack]]:
    if target not in _BY_TARGET:
        raise ValueError(f"unknown target '{target}' (downstream or reconstruction)")
    return _BY_TARGET[target]


def register_attack(cls: A) -> A:
    """Class decorator: register an attack under its `name` for its `target`."""
    attack_registry(cls.target).register(cls.name, cls)
    return cls


def build_attack(model: nn.Module, cell, seed: int = 0, **options: Any) -> Attack:
    """The attack a suite cell describes, on `model`: the model that crafts the perturbation (a classifier or a MIM
    model: the cell's target's own, or for a transfer cell the other one, as `cell.crafted_by` says)."""
    crafted_by = getattr(cell, "crafted_by", cell.target)
    if crafted_by is None:
        raise ValueError(f"cell '{cell.attack}' is not crafted by a model (a corruption)")
    return attack_registry(crafted_by).get(cell.impl).from_cell(model, cell, seed=seed, **options)
