"""Model families by name: `build(family, **arch)` as timm's `create_model` does for named models."""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from ._common import ArchError, MIMOutput
from .classifier import ViTClassifier, build_vit_classifier
from .mae import MaskedAutoencoderViT, build_mae

_FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "mae": build_mae,
    "vit_classifier": build_vit_classifier,
}


def register_family(name: str, builder: Callable[..., nn.Module]) -> None:
    _FAMILIES[name] = builder


def list_families() -> list[str]:
    return sorted(_FAMILIES)


def build(family: str, **arch: Any) -> nn.Module:
    """Build an untrained model of `family` with official-spelled architecture keys plus `mean`/`std`."""
    if family not in _FAMILIES:
        raise ArchError(f"unknown model family '{family}'; known: {', '.join(list_families())}")
    return _FAMILIES[family](**arch)


__all__ = ["ArchError", "MIMOutput", "MaskedAutoencoderViT", "ViTClassifier", "build", "list_families",
           "register_family"]
