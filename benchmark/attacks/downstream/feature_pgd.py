"""Feature-space PGD on the classifier (adaptive): push the pooled pre-logit features away from the clean ones.

The attacker never looks at the labels' loss: it maximises the per-sample squared distance between the
attacked and the clean features (MIMIR's feature attack); a sample counts as broken at the first iterate that
misclassifies it. Hand-written (no library has it); random start per sample id.
"""
from __future__ import annotations

from ..registry import register_attack
from .base import HandwrittenPGD, features_and_logits


@register_attack
class FeaturePGD(HandwrittenPGD):
    name = "feature_pgd"

    def _context(self, x, y):
        return {"features": self.model.features(x)}

    def _objective(self, x_adv, y, ctx):
        feats, logits = features_and_logits(self.model, x_adv)
        return logits, (feats - ctx["features"]).pow(2).flatten(1).mean(1).sum()
