"""MI-aware PGD on the classifier (adaptive, after MIMIR's adaptive attacks): cross-entropy plus an HSIC term.

Ascends mean cross-entropy + hsic_weight * nHSIC(features(x_adv), x_adv): the attacker pushes up the
dependence between the representation and the (perturbed) input that a MIMIR-style defense pushes down. The
normalised HSIC (benchmark.attacks.hsic) is in [0, 1]; bandwidths by the median heuristic on the clean batch,
fixed during the attack. A sample counts as broken at the first iterate that misclassifies it; random start
per sample id.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..hsic import median_bandwidth, normalized_hsic
from ..registry import register_attack
from .base import HandwrittenPGD, features_and_logits


@register_attack
class MIPGD(HandwrittenPGD):
    name = "mi_pgd"

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", steps: int = 20, alpha: float = 0.0,
                 hsic_weight: float = 1.0, seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, steps=steps, alpha=alpha, seed=seed)
        self.hsic_weight = float(hsic_weight)

    def _context(self, x, y):
        return {"sigma_features": median_bandwidth(self.model.features(x)), "sigma_input": median_bandwidth(x)}

    def _objective(self, x_adv, y, ctx):
        feats, logits = features_and_logits(self.model, x_adv)
        loss = F.cross_entropy(logits, y)
        if len(x_adv) > 1:
            loss = loss + self.hsic_weight * normalized_hsic(feats, x_adv, ctx["sigma_features"], ctx["sigma_input"])
        return logits, loss
