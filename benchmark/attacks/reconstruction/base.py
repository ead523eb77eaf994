"""Base of the reconstruction attacks: maximise a MIM model's loss against the CLEAN image.

No library attacks MIM losses, so these are written here, in torchattacks' shape (one attack per file,
one base class). Threat models:
- `aware`: the evaluation mask is known to the attacker and used for the gradient;
- `agnostic`: the gradient is averaged over K random masks (EoT); the result is evaluated on the fixed mask.
Scopes: `all` pixels, `visible` patches only, `masked` patches only (a control: for MAE it changes nothing).
Random starts are drawn per sample id, so a sample's attack never depends on its batch.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo import masking
from zoo.models._common import patch_mask_to_pixels

THREATS = ("aware", "agnostic")
SCOPES = ("all", "visible", "masked")
_START_STREAM = 2          # per-sample RNG stream of random starts
_EOT_SEED_OFFSET = 10_000  # EoT masks use seeds the evaluation never uses


def mim_attack_loss(model: nn.Module, x_adv: torch.Tensor, x_clean: torch.Tensor, mask: torch.Tensor,
                    clean_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample loss the attacker maximises: the family's MIM loss of x_adv against the clean image.

    BEiT has no pixels: cross-entropy of the masked positions against the clean prediction's top-1 tokens.
    """
    if getattr(model, "family", "") == "beit":
        logits = model.forward_mim(x_adv, mask).pred
        ce = F.cross_entropy(logits.flatten(0, 1), clean_tokens.flatten(), reduction="none").view(mask.shape)
        m = mask.to(ce.dtype)
        return (ce * m).sum(1) / m.sum(1)
    return model.forward_mim(x_adv, mask, target=x_clean, reduction="none").loss


def random_start(x: torch.Tensor, eps: float, norm: str, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
    """A uniform start in the Linf ball, or a uniform direction scaled into the L2 ball, per sample id."""
    shape = x.shape[1:]
    rows = []
    for sid in sample_ids.tolist():
        rng = masking.sample_rng(seed, int(sid), _START_STREAM)
        if norm == "Linf":
            rows.append(rng.uniform(-eps, eps, size=shape))
        else:
            d = rng.standard_normal(size=shape)
            r = rng.uniform() ** (1.0 / d.size)
            rows.append(d / (float((d ** 2).sum()) ** 0.5 + 1e-12) * eps * r)
    import numpy as np
    return torch.from_numpy(np.stack(rows)).to(device=x.device, dtype=x.dtype)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return grad.sign()
    g = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return grad / g.view(-1, *([1] * (grad.dim() - 1)))


class MIMAttack:
    """Projected gradient ascent on a MIM loss; FGSM, BIM and PGD are settings of it."""

    name = "mim_attack"

    def __init__(self, model: nn.Module, eps: float, norm: str = "Linf", steps: int = 10,
                 alpha: Optional[float] = None, random_start: bool = True, threat: str = "aware",
                 scope: str = "all", eot_samples: int = 1, seed: int = 0, keep_best: bool = True) -> None:
        if norm not in ("Linf", "L2"):
            raise ValueError(f"unknown norm '{norm}'")
        if threat not in THREATS or scope not in SCOPES:
            raise ValueError(f"threat must be one of {THREATS}, scope one of {SCOPES}")
        if threat == "agnostic" and scope != "all":
            raise ValueError("a mask-agnostic attacker does not know which patches are visible: scope must be 'all'")
        self.model, self.eps, self.norm, self.steps = model, float(eps), norm, int(steps)
        self.alpha = float(alpha) if alpha is not None else 2.5 * self.eps / max(self.steps, 1)
        self.random_start, self.threat, self.scope = random_start, threat, scope
        self.eot_samples = int(eot_samples) if threat == "agnostic" else 1
        self.seed, self.keep_best = seed, keep_best

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps:g}, norm={self.norm}, steps={self.steps}, "
                f"alpha={self.alpha:g}, random_start={self.random_start}, threat={self.threat}, scope={self.scope}, "
                f"eot={self.eot_samples})")

    def _scope_pixels(self, x: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        if self.scope == "all":
            return None
        p = self.model.patch_size
        pix = patch_mask_to_pixels(mask, p, (x.shape[2] // p, x.shape[3] // p)).to(x.dtype)
        return pix if self.scope == "masked" else 1 - pix

    def _gradient_masks(self, mask: torch.Tensor, sample_ids: torch.Tensor) -> list[torch.Tensor]:
        if self.threat == "aware":
            return [mask]
        return [self.model.make_mask(sample_ids, seed=self.seed + _EOT_SEED_OFFSET + k).to(mask.device)
                for k in range(self.eot_samples)]

    def _clean_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        if getattr(self.model, "family", "") != "beit":
            return None
        with torch.no_grad():
            return self.model.forward_mim(x, mask).pred.argmax(-1)

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        return self.forward(x, mask, sample_ids)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """Adversarial images for clean images `x` (in [0, 1]) under the evaluation `mask`."""
        x = x.detach()
        scope = self._scope_pixels(x, mask)
        grad_masks = self._gradient_masks(mask, sample_ids)
        tokens = [self._clean_tokens(x, m) for m in grad_masks]
        eval_tokens = tokens[0] if self.threat == "aware" else self._clean_tokens(x, mask)
        delta = torch.zeros_like(x)
        if self.random_start:
            delta = random_start(x, self.eps, self.norm, sample_ids, self.seed)
            if scope is not None:
                delta = project(delta * scope, self.eps, self.norm)
        delta = (x + delta).clamp(0, 1) - x
        best_delta, best_loss = delta.clone(), None
        was_training = self.model.training
        self.model.eval()
        for step in range(self.steps + 1):
            if step == self.steps and not self.keep_best:
                break
            delta.requires_grad_(True)
            losses = [mim_attack_loss(self.model, x + delta, x, m, t) for m, t in zip(grad_masks, tokens)]
            loss = torch.stack(losses).mean(0)
            if self.keep_best:
                # The loss on the evaluation mask decides which iterate is kept.
                with torch.no_grad():
                    eval_loss = loss if self.threat == "aware" else mim_attack_loss(self.model, x + delta, x, mask,
                                                                                    eval_tokens)
                    if best_loss is None:
                        best_loss = eval_loss.detach().clone()
                    else:
                        better = eval_loss > best_loss
                        best_loss = torch.where(better, eval_loss, best_loss)
                        best_delta[better] = delta.detach()[better]
            if step == self.steps:
                break
            grad, = torch.autograd.grad(loss.sum(), delta)
            with torch.no_grad():
                step_dir = ascent_direction(grad, self.norm)
                if scope is not None:
                    step_dir = step_dir * scope
                delta = project(delta.detach() + self.alpha * step_dir, self.eps, self.norm)
                delta = (x + delta).clamp(0, 1) - x
        self.model.train(was_training)
        final = best_delta if self.keep_best else delta.detach()
        return (x + final).clamp(0, 1).detach()
