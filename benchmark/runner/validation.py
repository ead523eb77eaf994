"""Model checks before a submission is benchmarked: numbers from a model that fails them would mean nothing.

Strict loading already happened in `zoo.load_model`. Here: every weight finite; two forward passes on the first
k evaluation images agree (a randomised model needs an EoT evaluation this benchmark does not run); the input
gradients of the losses each target's attacks use are finite and non-zero for every sample.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from zoo.checkpoints import CheckpointError, check_finite
from zoo.data import ImageDataset

from ..attacks.reconstruction import mim_attack_loss

VALIDATION_SAMPLES = 8
_REPEAT_TOL = 1e-5        # two forward passes of a deterministic model agree to float noise


class ModelRejected(Exception):
    """A model whose benchmark numbers would be meaningless; the message says why."""


def _max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (1.0 + b.abs().max()))


def _gradient_check(what: str, grad: Optional[torch.Tensor]) -> float:
    """The smallest per-sample L1 norm of the input gradient; refuse zero or non-finite gradients."""
    if grad is None:
        raise ModelRejected(f"{what}: the loss does not depend on the input (no input gradient); white-box "
                              f"attacks would be meaningless")
    if not torch.isfinite(grad).all():
        raise ModelRejected(f"{what}: non-finite input gradients")
    per_sample = grad.flatten(1).abs().sum(1)
    zero = int((per_sample == 0).sum())
    if zero:
        raise ModelRejected(f"{what}: input gradients are zero for {zero} of {len(per_sample)} samples (gradient "
                              f"masking or a non-differentiable model); white-box attacks would be meaningless")
    return float(per_sample.min())


def validate_model(bundle, data: ImageDataset, targets: list[str], seed: int = 0,
                   device: torch.device | str = "cpu", k: int = VALIDATION_SAMPLES) -> dict[str, Any]:
    """Refuse (ModelRejected) a model whose numbers would mean nothing; returns what was checked, for the entry.

    Strict loading already happened in `zoo.load_model`. Here: every weight finite; two forward passes on the
    first k evaluation images agree; the input gradients of the loss each target's attacks use are finite and
    non-zero for every sample.
    """
    report: dict[str, Any] = {"samples": min(k, len(data))}
    x = data.images[:k].to(device)
    y = data.labels[:k].to(device)
    ids = data.sample_ids[:k]
    roles = [r for r, t in (("mim", "reconstruction"), ("classifier", "downstream")) if t in targets]
    for role in roles:
        try:
            check_finite(bundle.require(role), source=f"{role} weights")
        except CheckpointError as exc:
            raise ModelRejected(str(exc)) from None
    report["finite_weights"] = True
    if "mim" in roles:
        mim = bundle.mim
        mask = mim.make_mask(ids, seed=seed).to(device)
        with torch.no_grad():
            a, b = mim.forward_mim(x, mask), mim.forward_mim(x, mask)
        first, second = (a.reconstruction, b.reconstruction) if a.reconstruction is not None else (a.pred, b.pred)
        if not torch.isfinite(first).all():
            raise ModelRejected("mim: non-finite outputs on the evaluation images")
        diff = _max_rel_diff(first, second)
        if diff > _REPEAT_TOL:
            raise ModelRejected(f"mim: two forward passes on the same input differ (max relative difference "
                                  f"{diff:.2e}); randomised models need an EoT evaluation this benchmark does not run")
        report["mim_repeat_diff"] = diff
        xg = x.clone().requires_grad_(True)
        tokens = a.pred.argmax(-1) if getattr(mim, "family", "") == "beit" else None
        loss = mim_attack_loss(mim, xg, x, mask, tokens)
        grad = torch.autograd.grad(loss.sum(), xg, allow_unused=True)[0] if loss.requires_grad else None
        report["mim_min_input_grad_l1"] = _gradient_check("mim", grad)
    if "classifier" in roles:
        clf = bundle.classifier
        with torch.no_grad():
            a, b = clf(x), clf(x)
        if not torch.isfinite(a).all():
            raise ModelRejected("classifier: non-finite logits on the evaluation images")
        diff = _max_rel_diff(a, b)
        if diff > _REPEAT_TOL:
            raise ModelRejected(f"classifier: two forward passes on the same input differ (max relative "
                                  f"difference {diff:.2e}); randomised models need an EoT evaluation this "
                                  f"benchmark does not run")
        report["classifier_repeat_diff"] = diff
        xg = x.clone().requires_grad_(True)
        loss = F.cross_entropy(clf(xg), y, reduction="sum")
        grad = torch.autograd.grad(loss, xg, allow_unused=True)[0] if loss.requires_grad else None
        report["classifier_min_input_grad_l1"] = _gradient_check("classifier", grad)
    return report
