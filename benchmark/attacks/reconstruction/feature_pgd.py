"""Feature-space PGD on a MIM encoder (adaptive): push the attacked encoder features away from the clean ones.

The attacker ignores the decoder and maximises the per-sample squared distance between the encoder's output
tokens for the attacked and the clean image (same mask), as MIMIR's feature attack does for ViTs. A defence
that only smooths the reconstruction loss surface, not the representation, shows up here. Random start per
sample id; the iterate with the largest feature distance is kept; evaluated, like every reconstruction attack,
by the reconstruction metrics on the fixed mask.
"""
from __future__ import annotations

from typing import Any

import torch

from ..registry import register_attack
from .base import MIMAttack


def encoder_features(model, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The MIM encoder's output tokens for images in [0, 1] under `mask` (N x T x D)."""
    if hasattr(model, "encode"):
        return model.encode(x, mask)
    return model.forward_mim(x, mask).latent


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of two feature tensors."""
    return (a - b).pow(2).flatten(1).mean(1)


@register_attack
class MIMFeaturePGD(MIMAttack):
    name = "feature_pgd"

    def __init__(self, model, eps: float, *, steps: int = 20, **settings) -> None:
        super().__init__(model, eps, steps=steps, random_start=True, **settings)

    def _context(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        with torch.no_grad():
            return {"features": encoder_features(self.model, x, mask)}

    def _objective(self, x_adv, x, mask, ctx):
        per = feature_distance(encoder_features(self.model, x_adv, mask), ctx["features"])
        return per, per.sum()
