"""Build torchattacks attacks from suite cells and run them with a seed fixed by the batch's sample ids."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torchattacks

from ...suites import Cell


def _pgd(model: nn.Module, cell: Cell):
    if cell.norm == "Linf":
        return torchattacks.PGD(model, eps=cell.eps, alpha=cell.alpha, steps=cell.steps,
                                random_start=cell.random_start)
    return torchattacks.PGDL2(model, eps=cell.eps, alpha=cell.alpha, steps=cell.steps,
                              random_start=cell.random_start)


DOWNSTREAM_ATTACKS: dict[str, Callable[[nn.Module, Cell], torchattacks.Attack]] = {"pgd": _pgd}


def build_downstream_attack(model: nn.Module, cell: Cell) -> torchattacks.Attack:
    if cell.impl not in DOWNSTREAM_ATTACKS:
        raise KeyError(f"no downstream implementation of '{cell.impl}'")
    return DOWNSTREAM_ATTACKS[cell.impl](model, cell)


def batch_seed(seed: int, sample_ids: torch.Tensor) -> int:
    """A seed fixed by the run's seed and the batch's sample ids (batches are fixed by sample id)."""
    ids = sample_ids.tolist()
    return (seed * 1_000_003 + (ids[0] if ids else 0) * 7919 + len(ids)) % (2 ** 63 - 1)


def run_seeded(attack, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
    """Run a torchattacks attack with torch's RNG seeded from the batch, without touching the global stream."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(batch_seed(seed, sample_ids))
        return attack(x, y)
