"""L4A (Ban & Dong, "Pre-trained Adversarial Perturbations", NeurIPS 2022): lift the low-layer activations of a
pretrained encoder, an attack that needs neither labels nor the downstream head.

The objective is L4A's base form: the mean squared output of encoder block `layer` (block 0, their ViT setting) for
the image with every patch visible, the view a classifier fine-tuned from the encoder has. Ban & Dong craft a
universal perturbation with it; the `transfer` suite runs it per image (PGD-20 with random start, the iterate of
largest activation kept) to compare it with the feature and MIM-loss transfer attacks at the same budgets. The
forward pass stops at the hooked block (a forward hook on the timm block), so one step costs the layers up to it.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..registry import register_attack
from .base import MIMAttack
from .feature_pgd import encoder_features, full_view

__all__ = ["MIML4A", "block_activation", "encoder_blocks"]


class _Reached(Exception):
    """Raised by the hook once the wanted block has run: the rest of the forward pass is not needed."""


def encoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a MIM model's encoder (MAE, BEiT: `blocks`; SimMIM: `encoder.blocks`)."""
    for owner in (model, getattr(model, "encoder", None)):
        blocks = getattr(owner, "blocks", None)
        if isinstance(blocks, nn.ModuleList) and len(blocks):
            return blocks
    raise ValueError(f"{type(model).__name__} has no encoder blocks (`blocks` or `encoder.blocks`)")


def block_activation(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
    """The output tokens of encoder block `layer` for images `x` in [0, 1] under `mask` (the pass stops there)."""
    captured: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        captured["out"] = output
        raise _Reached

    handle = encoder_blocks(model)[layer].register_forward_hook(hook)
    try:
        encoder_features(model, x, mask)
    except _Reached:
        pass
    finally:
        handle.remove()
    if "out" not in captured:
        raise RuntimeError(f"encoder block {layer} did not run")
    return captured["out"]


@register_attack
class MIML4A(MIMAttack):
    name = "l4a"

    def __init__(self, model, eps: float, *, steps: int = 20, layer: int = 0, **settings) -> None:
        super().__init__(model, eps, steps=steps, random_start=True, **settings)
        depth = len(encoder_blocks(model))
        if not 0 <= int(layer) < depth:
            raise ValueError(f"layer must be an encoder block index in 0-{depth - 1}, got {layer}")
        if self.threat != "aware" or self.scope != "all":
            raise ValueError("L4A sees every patch: threat 'aware' and scope 'all' only")
        self.layer = int(layer)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(x, full_view(mask), sample_ids)

    def _context(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        return {}

    def _objective(self, x_adv, x, mask, ctx):
        per = block_activation(self.model, x_adv, mask, self.layer).pow(2).flatten(1).mean(1)
        return per, per.sum()
