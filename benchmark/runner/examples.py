"""A few attacked examples of a run, for the reconstruction grid of the reports.

After a run, `capture_examples` re-runs ONE reconstruction cell (the middle eps of the suite's main attack) on the
first k samples and keeps the clean input, the perturbation and both reconstructions. It re-runs the attack
rather than hooking into the runner because the runner may not attack at all (a resumed or sharded run reads its
cells from the store) and because its attack dispatch is not this module's business; attacks are seeded by sample
id, so these k images get the perturbation the run gave them (up to float noise of batch composition).

`benchmark.leaderboard.examples` saves them beside the entry.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from zoo.data import ImageDataset
from zoo.models._common import patch_mask_to_pixels

from .. import metrics as M
from ..attacks import RECONSTRUCTION_ATTACKS, build_attack
from ..attacks.checks import check_adversarial
from ..suites import Cell, row_label

DEFAULT_K = 4


def pick_cell(cells: list[Cell]) -> Optional[Cell]:
    """The cell the grid shows: the main reconstruction attack (pgd when the suite has it, Linf first), middle eps."""
    recon = [c for c in cells if c.target == "reconstruction" and c.impl in RECONSTRUCTION_ATTACKS
             and c.threat == "aware" and c.source == "self" and c.impl != "universal"]
    if not recon:
        return None
    attack = "pgd" if any(c.attack == "pgd" for c in recon) else recon[0].attack
    group = [c for c in recon if c.attack == attack]
    norm = "Linf" if any(c.norm == "Linf" for c in group) else group[0].norm
    group = sorted((c for c in group if c.norm == norm and c.scope == "all"), key=lambda c: c.eps) or \
        sorted((c for c in recon if c.attack == attack and c.norm == norm), key=lambda c: c.eps)
    return group[(len(group) - 1) // 2]


def universal_example(cells: list[Cell], perturbations: dict[str, torch.Tensor]
                      ) -> tuple[Optional[Cell], Optional[Callable]]:
    """The universal cell the grid shows (the MIM loss's perturbation at the middle budget, else the first loss's)
    and the function that adds its perturbation: the run's own perturbation, not a new one."""
    recon = [c for c in cells if c.target == "reconstruction" and c.impl == "universal"
             and row_label(c.attack, c.norm, c.eps) in perturbations]
    if not recon:
        return None, None
    attack = "universal_mim" if any(c.attack == "universal_mim" for c in recon) else recon[0].attack
    group = sorted((c for c in recon if c.attack == attack), key=lambda c: c.eps)
    cell = group[(len(group) - 1) // 2]
    delta = perturbations[row_label(cell.attack, cell.norm, cell.eps)]

    def add(x: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return (x + delta.to(device=x.device, dtype=x.dtype)).clamp(0, 1)
    return cell, add


def capture_examples(mim, data: ImageDataset, cell: Cell, k: int = DEFAULT_K, seed: int = 0,
                     device: torch.device | str = "cpu", perturb: Optional[Callable] = None
                     ) -> Optional[dict[str, Any]]:
    """Attack the first k samples with `cell` (or `perturb(x, mask, ids)`, the images of a perturbation the run
    already made); None for a model without pixel reconstructions (BEiT)."""
    k = min(k, len(data))
    x = data.images[:k].to(device)
    ids = data.sample_ids[:k]
    mask = mim.make_mask(ids, seed=seed).to(device)
    with torch.inference_mode():
        clean_out = mim.forward_mim(x, mask)
    if clean_out.reconstruction is None:
        return None
    x_adv = perturb(x, mask, ids) if perturb is not None else build_attack(mim, cell, seed=seed)(x, mask, ids)
    check_adversarial(x_adv, x, cell.eps, cell.norm, what=f"examples {cell.attack} eps {cell.eps:g}")
    with torch.inference_mode():
        adv_out = mim.forward_mim(x_adv, mask)
    p = mim.patch_size
    rc, ra = clean_out.reconstruction.float().clamp(0, 1), adv_out.reconstruction.float().clamp(0, 1)
    grid = (x.shape[2] // p, x.shape[3] // p)
    return {
        "clean": x.cpu(), "delta": (x_adv - x).cpu(),
        "recon_clean": M.composite(x, rc, mask, p).cpu(), "recon_attacked": M.composite(x, ra, mask, p).cpu(),
        "mask_pixels": patch_mask_to_pixels(mask, p, grid).cpu(), "sample_ids": ids.cpu(),
        "psnr_clean": M.masked_psnr(rc, x, mask, p).cpu(), "psnr_attacked": M.masked_psnr(ra, x, mask, p).cpu(),
        "meta": {"attack": cell.attack, "norm": cell.norm, "eps": float(cell.eps), "cell": cell.key(),
                 "seed": seed},
    }
