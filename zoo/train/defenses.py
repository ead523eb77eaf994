"""The defenses of the MIM robustness literature, as named switches of a recipe (its `defenses` field).

Pretraining (MIM side):
- `adversarial`: min-max MIM training; the inner maximisation is a PGD or FGSM attack on the MIM loss, the
  outer loss the MIM loss of the adversarial image (its own target); `joint=True` adds the clean loss
  (the joint clean + adversarial scheme of simple FGSM training).
- `mimir`: the encoder sees the adversarial image, the target is the clean image, plus an HSIC penalty
  between the latent and the adversarial input (MIMIR; 1-step PGD, HSIC weight about 1e-5).
- `denoising`: MIM loss + lambda * ||f(x_adv) - x||^2 over the whole reconstructed image.
- `saliency_masking`, `entropy_masking`: masks biased towards salient (Sobel magnitude) or high-entropy
  patches, at the same mask ratio.
- `contrastive`: InfoNCE between the pooled clean and adversarial latents of the same image, against the batch.
- `ensemble_encoding`: the encoder runs on the clean and on a perturbed copy in parallel; the decoder sees the
  average of the two latents (a training-time feature ensemble; inference runs one encoder).
Architecture: `stochastic_depth`, `dropout`, `spectral_norm` (the encoder's linear layers).
Fine-tuning (classifier side): `adversarial_finetune` (PGD-AT, or FGSM with random start), `trades`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize
from torch.nn.utils.parametrizations import spectral_norm

PRETRAIN_DEFENSES = ("adversarial", "mimir", "denoising", "saliency_masking", "entropy_masking", "contrastive",
                     "ensemble_encoding")
ARCH_DEFENSES = ("stochastic_depth", "dropout", "spectral_norm")
FINETUNE_DEFENSES = ("adversarial_finetune", "trades")
ALL_DEFENSES = PRETRAIN_DEFENSES + ARCH_DEFENSES + FINETUNE_DEFENSES

# Defaults of each defense's settings (a recipe overrides any of them).
DEFAULTS: dict[str, dict[str, Any]] = {
    "adversarial": {"attack": "pgd", "eps": 0.1, "steps": 2, "alpha": None, "joint": True},
    "mimir": {"attack": "pgd", "eps": 0.1, "steps": 1, "alpha": None, "hsic_weight": 1e-5, "sigma": None},
    "denoising": {"attack": "pgd", "eps": 0.1, "steps": 2, "alpha": None, "weight": 1.0},
    "saliency_masking": {"temperature": 1.0},
    "entropy_masking": {"temperature": 1.0, "bins": 16},
    "contrastive": {"attack": "pgd", "eps": 0.1, "steps": 2, "alpha": None, "weight": 0.1, "temperature": 0.2},
    "ensemble_encoding": {"noise": "gaussian", "sigma": 0.1},
    "stochastic_depth": {"rate": 0.1},
    "dropout": {"rate": 0.1, "attn_rate": 0.0},
    "spectral_norm": {},
    "adversarial_finetune": {"attack": "pgd", "eps": 0.1, "steps": 3, "alpha": None, "clean_weight": 0.0},
    "trades": {"eps": 0.1, "steps": 3, "alpha": None, "beta": 6.0},
}


def settings(defenses: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """A defense's settings: its defaults updated by the recipe's values."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown defense '{name}'; known: {', '.join(ALL_DEFENSES)}")
    unknown = set(defenses.get(name, {})) - set(DEFAULTS[name])
    if unknown:
        raise KeyError(f"defense '{name}' has no setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS[name])}")
    return {**DEFAULTS[name], **defenses.get(name, {})}


def check_defenses(defenses: dict[str, dict[str, Any]], stage: str) -> None:
    allowed = (PRETRAIN_DEFENSES + ARCH_DEFENSES) if stage == "pretrain" else (FINETUNE_DEFENSES + ARCH_DEFENSES)
    for name in defenses:
        settings(defenses, name)  # unknown names and settings first
        if name not in allowed:
            raise KeyError(f"defense '{name}' does not apply to the {stage} stage (allowed: {', '.join(allowed)})")
    if "saliency_masking" in defenses and "entropy_masking" in defenses:
        raise KeyError("choose one of saliency_masking and entropy_masking")


def arch_overrides(defenses: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Build-time architecture keys of the architecture defenses (inactive at evaluation)."""
    out: dict[str, Any] = {}
    if "stochastic_depth" in defenses:
        out["drop_path_rate"] = settings(defenses, "stochastic_depth")["rate"]
    if "dropout" in defenses:
        s = settings(defenses, "dropout")
        out.update(drop_rate=s["rate"], attn_drop_rate=s["attn_rate"])
    return out


def _encoder_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for name, m in model.named_modules() if isinstance(m, nn.Linear) and name.startswith("blocks.")]


def apply_spectral_norm(model: nn.Module) -> nn.Module:
    """Spectral normalisation of every linear layer of the encoder blocks (power iteration during training)."""
    for layer in _encoder_linears(model):
        spectral_norm(layer)
    return model


def remove_spectral_norm(model: nn.Module) -> nn.Module:
    """Bake the normalised weights in, so the saved state dict has the official keys."""
    for layer in _encoder_linears(model):
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return model


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of `a` and of `b` are positives, every other row of the batch a negative."""
    a = nn.functional.normalize(a, dim=-1)
    b = nn.functional.normalize(b, dim=-1)
    logits = a @ b.t() / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.t(), labels))
