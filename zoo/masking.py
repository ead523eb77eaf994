"""Seeded per-sample masks: each sample's mask is a pure function of (seed, sample id, scheme).

A sample therefore gets the same mask in every run, shard and batch, clean or attacked, and in every
model that shares its patch grid. True = masked. Schemes: MAE random (`random_mask`), SimMIM coarse
(`coarse_mask`), BEiT blockwise (`blockwise_mask`), and score-guided (`scored_mask`).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch

SampleIds = Union[torch.Tensor, Sequence[int], np.ndarray]


def _as_id_list(sample_ids: SampleIds) -> list[int]:
    if isinstance(sample_ids, torch.Tensor):
        return [int(i) for i in sample_ids.flatten().tolist()]
    return [int(i) for i in np.asarray(sample_ids).flatten().tolist()]


def sample_rng(seed: int, sample_id: int, stream: int = 0) -> np.random.Generator:
    """A generator for one sample; `stream` separates independent uses (masks, random starts, ...)."""
    if sample_id < 0 or seed < 0:
        raise ValueError("seed and sample ids must be non-negative")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, sample_id, stream])))


def sample_noise(sample_ids: SampleIds, num_patches: int, seed: int = 0, stream: int = 0) -> torch.Tensor:
    """Uniform noise N x L, one independent row per sample id."""
    ids = _as_id_list(sample_ids)
    rows = [sample_rng(seed, i, stream).random(num_patches) for i in ids]
    return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, num_patches))).to(torch.float32)


def num_masked(num_patches: int, mask_ratio: float) -> int:
    """MAE keeps int(L * (1 - mask_ratio)) patches."""
    return num_patches - int(num_patches * (1 - mask_ratio))


def mask_from_noise(noise: torch.Tensor, mask_ratio: float) -> torch.Tensor:
    """MAE's rule: keep the int(L*(1-ratio)) patches with the smallest noise, mask the rest."""
    n, length = noise.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    mask = torch.ones(n, length, dtype=torch.bool, device=noise.device)
    mask.scatter_(1, ids_shuffle[:, :len_keep], False)
    return mask


def random_mask(sample_ids: SampleIds, num_patches: int, mask_ratio: float, seed: int = 0) -> torch.Tensor:
    """MAE random masking at `mask_ratio`, seeded per sample."""
    return mask_from_noise(sample_noise(sample_ids, num_patches, seed), mask_ratio)


def scored_mask(scores: torch.Tensor, mask_ratio: float, sample_ids: SampleIds, seed: int = 0,
                temperature: float = 1.0) -> torch.Tensor:
    """Mask biased towards high-scoring patches at the same ratio (Gumbel top-k on log-scores, seeded per sample).

    Used by saliency- and entropy-guided masking: patches with larger scores are masked more often, but every
    patch keeps a chance, so the model still sees every kind of patch.
    """
    n, length = scores.shape
    u = sample_noise(sample_ids, length, seed, stream=1).to(scores.device).clamp_(1e-6, 1 - 1e-6)
    gumbel = -torch.log(-torch.log(u))
    logits = torch.log(scores.clamp_min(1e-8) / scores.clamp_min(1e-8).sum(1, keepdim=True)) / temperature
    # mask_from_noise masks the largest noise: the highest perturbed scores are masked.
    return mask_from_noise(logits + gumbel, mask_ratio)


def coarse_mask(sample_ids: SampleIds, grid: tuple[int, int], scale: int, mask_ratio: float,
                seed: int = 0) -> torch.Tensor:
    """SimMIM's masking: ceil(ratio * cells) random cells of `scale` x `scale` patches each, seeded per sample.

    As microsoft/SimMIM `MaskGenerator` (mask_patch_size = scale * model patch size); returns bool N x L.
    """
    h, w = grid
    if h % scale or w % scale:
        raise ValueError(f"a {h}x{w} patch grid is not tiled by {scale}x{scale} mask cells")
    rh, rw = h // scale, w // scale
    cells = rh * rw
    count = int(math.ceil(cells * mask_ratio))
    rows = []
    for sid in _as_id_list(sample_ids):
        m = np.zeros(cells, dtype=bool)
        m[sample_rng(seed, sid).permutation(cells)[:count]] = True
        rows.append(m.reshape(rh, rw).repeat(scale, axis=0).repeat(scale, axis=1).reshape(-1))
    return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, h * w), dtype=bool))


def _add_block(rng: np.random.Generator, mask: np.ndarray, max_patches: int, min_patches: int,
               log_aspect: tuple[float, float]) -> int:
    """One rectangle of masked patches (up to 10 tries), as unilm's `MaskingGenerator._mask`; returns how many."""
    height, width = mask.shape
    delta = 0
    for _ in range(10):
        # a + (b - a) * u as Python's random.uniform, which unilm uses (valid for b < a too)
        target_area = min_patches + (max_patches - min_patches) * rng.random()
        aspect = math.exp(log_aspect[0] + (log_aspect[1] - log_aspect[0]) * rng.random())
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < width and h < height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            new = h * w - int(mask[top:top + h, left:left + w].sum())
            if 0 < new <= max_patches:
                mask[top:top + h, left:left + w] = True
                delta += new
        if delta > 0:
            break
    return delta


def blockwise_mask(sample_ids: SampleIds, grid: tuple[int, int], num_masking_patches: int,
                   min_num_patches: int = 16, max_num_patches: Optional[int] = None, seed: int = 0,
                   min_aspect: float = 0.3) -> torch.Tensor:
    """BEiT's blockwise masking (unilm `MaskingGenerator`): rectangles until ~num_masking_patches are masked.

    The count may differ between samples (BEiT's generator stops when no block fits); returns bool N x L.
    """
    max_block = num_masking_patches if max_num_patches is None else max_num_patches
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    rows = []
    for sid in _as_id_list(sample_ids):
        rng = sample_rng(seed, sid)
        mask = np.zeros(grid, dtype=bool)
        count = 0
        while count < num_masking_patches:
            delta = _add_block(rng, mask, min(num_masking_patches - count, max_block), min_num_patches, log_aspect)
            if delta == 0:
                break
            count += delta
        rows.append(mask.reshape(-1))
    return torch.from_numpy(np.stack(rows) if rows else np.zeros((0, grid[0] * grid[1]), dtype=bool))


def ids_of(sample_ids: Iterable[int]) -> torch.Tensor:
    return torch.as_tensor(list(sample_ids), dtype=torch.long)


def patch_saliency(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Per-patch saliency N x L: mean Sobel gradient magnitude of the image (channels averaged)."""
    import torch.nn.functional as F
    gray = x.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
    k = torch.stack([kx, kx.t()]).unsqueeze(1)
    g = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), k)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    return F.avg_pool2d(mag, patch_size).flatten(1)


def patch_entropy(x: torch.Tensor, patch_size: int, bins: int = 16) -> torch.Tensor:
    """Per-patch Shannon entropy N x L (bits) of the pixel intensities quantised into `bins` levels."""
    n, c, h, w = x.shape
    p = patch_size
    q = (x.clamp(0, 1) * (bins - 1)).round().long()
    patches = q.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), -1)
    counts = torch.zeros(n, patches.shape[1], bins, device=x.device, dtype=x.dtype)
    counts.scatter_add_(2, patches, torch.ones_like(patches, dtype=x.dtype))
    prob = counts / patches.shape[-1]
    return -(prob * torch.log2(prob.clamp_min(1e-12))).sum(-1)
