"""Every adversarial batch is checked: inside the eps-ball (float tolerance) and inside [0, 1]."""
from __future__ import annotations

import torch

TOLERANCE = 1e-5


class ThreatModelViolation(RuntimeError):
    """An attack returned a perturbation outside its budget or an image outside [0, 1]."""


def perturbation_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    if norm == "Linf":
        return flat.abs().amax(dim=1)
    if norm == "L2":
        return flat.norm(p=2, dim=1)
    raise ValueError(f"unknown norm '{norm}' (Linf or L2)")


def check_adversarial(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str, what: str = "attack",
                      tol: float = TOLERANCE) -> torch.Tensor:
    """Raise ThreatModelViolation unless every image is in [0, 1] and within eps of the clean one."""
    if x_adv.shape != x.shape:
        raise ThreatModelViolation(f"{what}: adversarial batch has shape {tuple(x_adv.shape)}, "
                                   f"clean batch {tuple(x.shape)}")
    if not torch.isfinite(x_adv).all():
        raise ThreatModelViolation(f"{what}: non-finite values in the adversarial batch")
    lo, hi = float(x_adv.min()), float(x_adv.max())
    if lo < -tol or hi > 1 + tol:
        raise ThreatModelViolation(f"{what}: adversarial images leave [0, 1] (min {lo:.6g}, max {hi:.6g})")
    norms = perturbation_norm(x_adv - x, norm)
    worst = float(norms.max()) if norms.numel() else 0.0
    if worst > eps * (1 + tol) + tol:
        raise ThreatModelViolation(f"{what}: perturbation {norm} norm {worst:.6g} exceeds eps {eps:.6g}")
    return norms
