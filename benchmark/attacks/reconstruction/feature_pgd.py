"""Feature-space PGD on a MIM encoder (adaptive, and label-free transfer): push the attacked encoder features away
from the clean ones.

The attacker ignores the decoder and maximises the per-sample squared distance between the encoder's output
tokens for the attacked and the clean image, as MIMIR's feature attack does for ViTs. `view` says what the encoder
sees: 'mask', the evaluation mask (the adaptive attack on the reconstruction: a defence that only smooths the
reconstruction loss surface, not the representation, shows up here); 'full', every patch visible, the view a
classifier fine-tuned from the encoder has of an image (the label-free transfer attack of the `transfer` suite,
which crafts on the public pretrained encoder alone). Random start per sample id; the iterate with the largest
feature distance is kept.
"""
from __future__ import annotations

from typing import Any

import torch

from ..registry import register_attack
from .base import MIMAttack

VIEWS = ("mask", "full")


def encoder_features(model, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The MIM encoder's output tokens for images in [0, 1] under `mask` (N x T x D)."""
    if hasattr(model, "encode"):
        return model.encode(x, mask)
    backbone = getattr(model, "encoder", model)   # SimMIM wraps its ViT in `encoder`; BEiT is its own backbone
    if hasattr(backbone, "forward_masked") and hasattr(model, "normalizer"):
        return backbone.forward_masked(model.normalizer(x), mask)   # the latent, without the decoder or lm_head
    return model.forward_mim(x, mask).latent


def full_view(mask: torch.Tensor) -> torch.Tensor:
    """A mask with every patch visible, shaped like `mask`."""
    return torch.zeros_like(mask, dtype=torch.bool)


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of two feature tensors."""
    return (a - b).pow(2).flatten(1).mean(1)


@register_attack
class MIMFeaturePGD(MIMAttack):
    name = "feature_pgd"

    def __init__(self, model, eps: float, *, steps: int = 20, view: str = "mask", **settings) -> None:
        super().__init__(model, eps, steps=steps, random_start=True, **settings)
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if view == "full" and (self.threat != "aware" or self.scope != "all"):
            raise ValueError("the full view shows every patch: threat 'aware' and scope 'all' only")
        self.view = view

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(x, full_view(mask) if self.view == "full" else mask, sample_ids)

    def _context(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        with torch.no_grad():
            return {"features": encoder_features(self.model, x, mask)}

    def _objective(self, x_adv, x, mask, ctx):
        per = feature_distance(encoder_features(self.model, x_adv, mask), ctx["features"])
        return per, per.sum()
