"""Model families by name: `build(family, **arch)` as timm's `create_model` does for named models."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
from timm.models._manipulate import reinit_non_persistent_buffers

from ._common import ArchError, MIMOutput
from .beit import BeitForMaskedImageModeling, build_beit
from .classifier import BeitClassifier, ViTClassifier, build_beit_classifier, build_vit_classifier
from .mae import MaskedAutoencoderViT, build_mae
from .simmim import SimMIM, build_simmim

_FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "mae": build_mae,
    "simmim": build_simmim,
    "beit": build_beit,
    "vit_classifier": build_vit_classifier,
    "beit_classifier": build_beit_classifier,
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


def _buffers_recomputable(model: nn.Module) -> bool:
    """Every module that holds non-persistent (derived) buffers can recompute them."""
    return all(hasattr(m, "init_non_persistent_buffers") for m in model.modules() if m._non_persistent_buffers_set)


def build_for_weights(family: str, **arch: Any) -> nn.Module:
    """`build` for a model whose every weight comes from a checkpoint next: no random initialisation.

    The model is built on the meta device and given empty storage; its derived buffers (normalisation
    constants, relative position indices) are recomputed, as timm does for pretrained models. Loading must
    then be strict, which `zoo.load_checkpoint` is. Falls back to `build` when a module cannot do this.
    """
    try:
        with torch.device("meta"):
            model = _FAMILIES[family](**arch) if family in _FAMILIES else None
    except ArchError:
        raise
    except Exception:  # noqa: BLE001 - a builder that cannot run on the meta device: build normally
        model = None
    if model is None or not _buffers_recomputable(model):
        return build(family, **arch)
    model = model.to_empty(device="cpu")
    reinit_non_persistent_buffers(model)
    return model


__all__ = ["ArchError", "BeitClassifier", "BeitForMaskedImageModeling", "MIMOutput", "MaskedAutoencoderViT", "SimMIM",
           "ViTClassifier", "build", "build_for_weights", "list_families", "register_family"]
