"""MI-aware PGD on a MIM model (adaptive, after MIMIR's adaptive attacks): MIM loss plus an HSIC term.

MIMIR trains the encoder to keep little information about the adversarial input in its latent (an HSIC
penalty between latent and input). An attacker who knows this ascends

    mean_i L_MIM(x_adv_i; x_i) + hsic_weight * nHSIC(latent(x_adv), x_adv)

with the normalised HSIC (benchmark.attacks.hsic, Gaussian kernels, median-heuristic bandwidths fixed on the
clean batch). nHSIC lies in [0, 1], so hsic_weight = 1 puts both terms on a comparable scale. The HSIC term
couples the samples of a batch (batches are fixed by sample id, so results stay reproducible). Iterates are
ranked by each sample's MIM loss (what the benchmark measures); random start per sample id.
"""
from __future__ import annotations

from typing import Any

import torch

from ..hsic import median_bandwidth, normalized_hsic
from ..registry import register_attack
from .base import MIMAttack, token_loss


@register_attack
class MIMMIPGD(MIMAttack):
    name = "mi_pgd"

    def __init__(self, model, eps: float, *, steps: int = 20, hsic_weight: float = 1.0, **settings) -> None:
        super().__init__(model, eps, steps=steps, random_start=True, **settings)
        self.hsic_weight = float(hsic_weight)

    def _context(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        ctx = super()._context(x, mask)
        with torch.no_grad():
            latent = self.model.forward_mim(x, mask).latent
        ctx.update(sigma_latent=median_bandwidth(latent), sigma_input=median_bandwidth(x))
        return ctx

    def hsic_term(self, latent: torch.Tensor, x_adv: torch.Tensor, ctx: dict[str, Any]) -> torch.Tensor:
        if latent.shape[0] < 2:
            return latent.new_zeros(())
        return normalized_hsic(latent, x_adv, ctx["sigma_latent"], ctx["sigma_input"])

    def _objective(self, x_adv, x, mask, ctx):
        if getattr(self.model, "family", "") == "beit":
            out = self.model.forward_mim(x_adv, mask)
            per, latent = token_loss(out.pred, ctx["tokens"], mask), out.latent
        else:
            out = self.model.forward_mim(x_adv, mask, target=x, reduction="none")
            per, latent = out.loss, out.latent
        return per, per.mean() + self.hsic_weight * self.hsic_term(latent, x_adv, ctx)
