"""Pieces shared by every model family: input normalisation, patch (un)folding, outputs, arch checks."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
BEIT_MEAN = (0.5, 0.5, 0.5)
BEIT_STD = (0.5, 0.5, 0.5)

Stat = Union[float, Sequence[float]]

# Keys every family accepts besides its official constructor arguments.
COMMON_ARCH_KEYS = frozenset({"mean", "std", "norm_layer_eps", "drop_rate", "drop_path_rate", "attn_drop_rate"})


@dataclass
class MIMOutput:
    """What `forward_mim` returns; see DESIGN.md (Python API)."""

    loss: Optional[torch.Tensor]
    pred: torch.Tensor
    reconstruction: Optional[torch.Tensor]
    latent: torch.Tensor  # encoder output tokens (after the final norm), used by adaptive attacks and defenses


class ArchError(ValueError):
    """An architecture argument that the family does not know, or a wrong value."""


def check_arch(family: str, arch: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys that the family's official constructor does not spell (DESIGN.md: unknown keys are an error)."""
    allowed = set(allowed) | COMMON_ARCH_KEYS
    unknown = sorted(set(arch) - allowed)
    if unknown:
        raise ArchError(f"unknown architecture key(s) for '{family}': {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(allowed))}")


def layer_norm(eps: float) -> type:
    return partial(nn.LayerNorm, eps=eps)


def resolve_stats(mean: Optional[Stat], std: Optional[Stat], in_chans: int,
                  default_mean: Sequence[float], default_std: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std; a scalar applies to every channel, None takes the family default (3 channels only)."""
    def _one(value: Optional[Stat], default: Sequence[float], what: str) -> tuple[float, ...]:
        if value is None:
            if in_chans != len(default):
                raise ArchError(f"in_chans={in_chans}: give '{what}' explicitly (the family default is for "
                                f"{len(default)} channels)")
            return tuple(float(v) for v in default)
        if isinstance(value, (int, float)):
            return (float(value),) * in_chans
        value = tuple(float(v) for v in value)
        if len(value) == 1:
            return value * in_chans
        if len(value) != in_chans:
            raise ArchError(f"'{what}' has {len(value)} values for in_chans={in_chans}")
        return value
    m, s = _one(mean, default_mean, "mean"), _one(std, default_std, "std")
    if any(v <= 0 for v in s):
        raise ArchError("'std' must be positive")
    return m, s


class InputNormalizer(nn.Module):
    """(x - mean) / std on images in [0, 1]; buffers are not saved, so checkpoints keep their official keys."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self._stats = (tuple(float(v) for v in mean), tuple(float(v) for v in std))
        self.register_buffer("mean", torch.empty(1, len(mean), 1, 1), persistent=False)
        self.register_buffer("std", torch.empty(1, len(std), 1, 1), persistent=False)
        self.init_non_persistent_buffers()

    def init_non_persistent_buffers(self) -> None:
        """(Re)compute the buffers, e.g. after a model was built on the meta device (as timm's hook)."""
        with torch.no_grad():
            for name, values in zip(("mean", "std"), self._stats):
                buf = getattr(self, name)
                buf.copy_(torch.tensor(values, dtype=buf.dtype, device=buf.device).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """N x C x H x W -> N x L x (p*p*C), MAE's ordering ('nchpwq->nhwpqc')."""
    n, c, h, w = imgs.shape
    x = imgs.reshape(n, c, h // p, p, w // p, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(x: torch.Tensor, p: int, c: int, grid: tuple[int, int]) -> torch.Tensor:
    """N x L x (p*p*C) -> N x C x H x W, the inverse of `patchify`."""
    h, w = grid
    x = x.reshape(x.shape[0], h, w, p, p, c)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(x.shape[0], c, h * p, w * p)


def patch_mask_to_pixels(mask: torch.Tensor, p: int, grid: tuple[int, int]) -> torch.Tensor:
    """Bool N x L patch mask -> float N x 1 x H x W pixel mask."""
    h, w = grid
    m = mask.reshape(mask.shape[0], 1, h, w).to(torch.float32)
    return m.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


def check_mask(mask: torch.Tensor, n: int, num_patches: int) -> torch.Tensor:
    if mask.dtype != torch.bool:
        mask = mask.bool()
    if mask.dim() != 2 or mask.shape != (n, num_patches):
        raise ValueError(f"mask must be bool N x L = {n} x {num_patches}, got {tuple(mask.shape)}")
    return mask
