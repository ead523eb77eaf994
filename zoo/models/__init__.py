"""Model families by name: `build(family, **arch)` as timm's `create_model` does for named models."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from timm.models._manipulate import reinit_non_persistent_buffers

from ..registries import Registry, UnknownNameError
from ._common import ArchError, MIMOutput
from .beit import BeitForMaskedImageModeling, build_beit
from .classifier import BeitClassifier, ViTClassifier, build_beit_classifier, build_vit_classifier
from .mae import MaskedAutoencoderViT, build_mae
from .simmim import SimMIM, build_simmim

FAMILIES: Registry[Callable[..., nn.Module]] = Registry("model family")
for _name, _builder in (("mae", build_mae), ("simmim", build_simmim), ("beit", build_beit),
                        ("vit_classifier", build_vit_classifier), ("beit_classifier", build_beit_classifier)):
    FAMILIES.register(_name, _builder)


def register_family(name: str, builder: Callable[..., nn.Module], replace: bool = False) -> None:
    """Add a model family (a builder taking official-spelled architecture keys plus `mean`/`std`)."""
    FAMILIES.register(name, builder, replace=replace)


def list_families(filter: Optional[str] = None) -> list[str]:
    return FAMILIES.list(filter, sort=True)


def _builder(family: str) -> Callable[..., nn.Module]:
    try:
        return FAMILIES.get(family)
    except UnknownNameError as exc:
        raise ArchError(str(exc)) from None


def build(family: str, **arch: Any) -> nn.Module:
    """Build an untrained model of `family` with official-spelled architecture keys plus `mean`/`std`."""
    return _builder(family)(**arch)


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
            model = _builder(family)(**arch)
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
           "FAMILIES", "ViTClassifier", "build", "build_for_weights", "list_families", "register_family"]
