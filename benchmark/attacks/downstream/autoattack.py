"""AutoAttack (Croce & Hein, 2020) through `pyautoattack` (or fra31's `autoattack`): the whole 'standard'
version, and its parts one at a time for the cascade of the `standard` suite.

Standard = APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries), each on the samples the
previous ones left robust; a sample is robust only if it survives all four. Linf or L2. The parts (APGD-CE,
APGD-T, Square: apgd.py, square.py) run through the same AutoAttack object in its 'custom' version, configured
as 'standard' configures them. The seed handed to AutoAttack is the batch's seed, so results are reproducible.
`pyautoattack` (the maintained PyPI packaging) is used when importable, else the original `autoattack` package
from github.com/fra31/auto-attack.
"""
from __future__ import annotations

import importlib
from typing import Any

import torch
import torch.nn as nn

from ..base import batch_seed
from ..registry import register_attack
from .base import DownstreamAttack


def autoattack_backend() -> tuple[Any, str]:
    """(AutoAttack class, package name); ImportError naming both packages when neither is installed."""
    for package in ("pyautoattack", "autoattack"):
        try:
            return importlib.import_module(package).AutoAttack, package
        except ImportError:
            continue
    raise ImportError("AutoAttack needs the 'pyautoattack' package (pip install pyautoattack) or fra31's "
                      "'autoattack' (pip install git+https://github.com/fra31/auto-attack)")


def run_autoattack_parts(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str, seed: int,
                         parts: list[str], configure=None) -> torch.Tensor:
    """Adversarial images from AutoAttack's `parts` ('apgd-ce', 'apgd-t', 'square', ...) run in sequence on the
    samples still robust, with the 'standard' version's settings; `configure(aa)` may change them further."""
    cls, package = autoattack_backend()
    if package == "pyautoattack":
        aa = cls(model, attacks=list(parts), version="custom", eps=eps, norm=norm, seed=seed, device=x.device)
    else:
        aa = cls(model, norm=norm, eps=eps, version="custom", attacks_to_run=list(parts), seed=seed,
                 device=str(x.device), verbose=False)
    aa.apgd.n_restarts = 1                          # as 'standard' sets them (_set_version)
    aa.apgd_targeted.n_target_classes, aa.apgd_targeted.n_restarts = 9, 1
    aa.fab.n_restarts, aa.fab.n_target_classes = 1, 9
    aa.square.n_queries = 5000
    if configure is not None:
        configure(aa)
    if package == "pyautoattack":
        aa.verbose = False
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=max(len(x), 1))
    else:
        x_adv = aa.run_standard_evaluation(x, y, bs=max(len(x), 1))
    return x_adv


@register_attack
class AutoAttack(DownstreamAttack):
    name = "autoattack"
    float_logits = True

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", version: str = "standard",
                 seed: int = 0) -> None:
        super().__init__(model, eps, norm=norm, seed=seed)
        self.version = version

    def build(self, seed: int, device: torch.device):
        cls, package = autoattack_backend()
        if package == "pyautoattack":
            return cls(self.model, norm=self.norm, eps=self.eps, version=self.version, seed=seed, device=device)
        return cls(self.model, norm=self.norm, eps=self.eps, version=self.version, seed=seed, device=str(device),
                   verbose=False)

    def forward(self, x, y, sample_ids):
        aa = self.build(batch_seed(self.seed, sample_ids), x.device)
        if autoattack_backend()[1] == "pyautoattack":
            x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=max(len(x), 1))
        else:
            x_adv = aa.run_standard_evaluation(x, y, bs=max(len(x), 1))
        return x_adv
