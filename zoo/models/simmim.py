"""SimMIM (Xie et al., CVPR 2022) as microsoft/SimMIM `models/simmim.SimMIM` runs its ViT, from timm layers.

The encoder is BEiT-style (shared relative position bias, layer scale, a mask token, no absolute position
embedding by default); the decoder is a 1x1 convolution and a PixelShuffle back to pixels; the loss is L1 on
the masked pixels. Official key names (`encoder.*`, `decoder.0.*`); images in [0, 1], normalised inside.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import masking
from ._common import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    InputNormalizer,
    MIMOutput,
    check_arch,
    check_mask,
    patch_mask_to_pixels,
    resolve_stats,
)
from .beit import BACKBONE_ARCH_KEYS, MaskedBeitBackbone, backbone_kwargs

# encoder_stride is SimMIM's constructor argument; mask_patch_size / mask_ratio its DATA.MASK_* settings.
SIMMIM_ARCH_KEYS = BACKBONE_ARCH_KEYS + ("encoder_stride", "mask_patch_size", "mask_ratio")
SIMMIM_MASK_PATCH_SIZE = 32  # pixels, SimMIM's setting for every backbone


class SimMIM(nn.Module):
    """SimMIM with a ViT encoder: masked patches -> mask token; a linear pixel head predicts every pixel."""

    family = "simmim"

    def __init__(self, encoder_stride: Optional[int] = None, mask_patch_size: Optional[int] = None,
                 mask_ratio: float = 0.6, mean=None, std=None, **backbone: Any) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder = MaskedBeitBackbone(**backbone)
        self.patch_size, self.grid_size = self.encoder.patch_size, self.encoder.grid_size
        self.num_patches = self.encoder.num_patches
        self.in_chans = self.encoder.patch_embed.proj.in_channels
        self.encoder_stride = self.patch_size if encoder_stride is None else int(encoder_stride)
        if self.encoder_stride != self.patch_size:
            raise ValueError(f"a ViT encoder has stride {self.patch_size} (its patch size), got encoder_stride="
                             f"{self.encoder_stride}")
        self.normalizer = InputNormalizer(*resolve_stats(mean, std, self.in_chans, IMAGENET_DEFAULT_MEAN,
                                                         IMAGENET_DEFAULT_STD))
        self.decoder = nn.Sequential(
            nn.Conv2d(self.encoder.embed_dim, self.encoder_stride ** 2 * self.in_chans, kernel_size=1),
            nn.PixelShuffle(self.encoder_stride))
        self.mask_ratio = mask_ratio
        self.mask_patch_size = self._mask_patch_size(mask_patch_size)

    def _mask_patch_size(self, size: Optional[int]) -> int:
        img = self.grid_size[0] * self.patch_size

        def tiles(s: int) -> bool:
            return s % self.patch_size == 0 and all((g * self.patch_size) % s == 0 for g in self.grid_size)
        if size is None:  # SimMIM's 32 px; small images that 32 px cannot tile twice: 2 x 2, else single patches
            size = next(s for s in (SIMMIM_MASK_PATCH_SIZE, 2 * self.patch_size, self.patch_size)
                        if tiles(s) and img // s >= 2)
        if not tiles(size):
            raise ValueError(f"mask_patch_size {size} must be a multiple of the patch size {self.patch_size} "
                             f"and tile the {img}-pixel image")
        return int(size)

    # -- masks
    def make_mask(self, sample_ids, seed: int = 0) -> torch.Tensor:
        """SimMIM's coarse masking (mask_patch_size cells at mask_ratio), a pure function of (seed, sample id)."""
        mask = masking.coarse_mask(sample_ids, self.grid_size, self.mask_patch_size // self.patch_size,
                                   self.mask_ratio, seed)
        return mask.to(self.encoder.cls_token.device)

    # -- forward passes
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (cls first) -> pixels N x C x H x W in the normalised space."""
        z = latent[:, 1:].transpose(1, 2)
        z = z.reshape(z.shape[0], z.shape[1], *self.grid_size)
        return self.decoder(z)

    def loss_from_pred(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                       reduction: str = "mean") -> torch.Tensor:
        """SimMIM's objective: L1 on masked pixels against `target` (an image in [0, 1]), mean per channel."""
        pix = patch_mask_to_pixels(mask, self.patch_size, self.grid_size).to(pred.dtype)
        err = F.l1_loss(self.normalizer(target), pred, reduction="none") * pix
        if reduction == "none":  # per-sample loss
            return err.sum(dim=(1, 2, 3)) / (pix.sum(dim=(1, 2, 3)) + 1e-5) / self.in_chans
        return err.sum() / (pix.sum() + 1e-5) / self.in_chans

    def forward_mim(self, x: torch.Tensor, mask: torch.Tensor, target: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> MIMOutput:
        """Masked reconstruction of `x` (in [0, 1]); the loss is taken against `target` (default: `x`)."""
        mask = check_mask(mask, x.shape[0], self.num_patches)
        latent = self.encoder.forward_masked(self.normalizer(x), mask)
        pred = self.decode(latent)
        loss = self.loss_from_pred(pred, x if target is None else target, mask, reduction)
        return MIMOutput(loss=loss, pred=pred, reconstruction=self.normalizer.inverse(pred), latent=latent)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> MIMOutput:
        return self.forward_mim(x, mask)


def build_simmim(**arch: Any) -> SimMIM:
    check_arch("simmim", arch, SIMMIM_ARCH_KEYS)
    own = {k: arch[k] for k in ("encoder_stride", "mask_patch_size", "mask_ratio", "mean", "std") if k in arch}
    return SimMIM(**own, **backbone_kwargs(arch))
