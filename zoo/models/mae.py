"""MAE (He et al., 2022) as facebookresearch/mae `models_mae.MaskedAutoencoderViT` computes it, from timm blocks.

Parameter names and the state-dict layout are the official ones, so the authors' checkpoints load unchanged.
The model takes images in [0, 1] and normalises them itself; masks are given explicitly (bool N x L).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn
from timm.layers import PatchEmbed, calculate_drop_path_rates
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block

from .. import masking
from ._common import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    InputNormalizer,
    MIMOutput,
    check_arch,
    check_mask,
    layer_norm,
    patchify,
    resolve_stats,
    unpatchify,
)

MAE_ARCH_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
                 "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss", "mask_ratio")


def _sincos_with_cls(grid: tuple[int, int], dim: int) -> torch.Tensor:
    pe = build_sincos2d_pos_embed(list(grid), dim=dim, temperature=10000.0)
    return torch.cat([torch.zeros(1, dim), pe], dim=0).unsqueeze(0)


class MaskedAutoencoderViT(nn.Module):
    """Masked autoencoder with a ViT encoder and a light ViT decoder (official key names)."""

    family = "mae"

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 1024,
                 depth: int = 24, num_heads: int = 16, decoder_embed_dim: int = 512, decoder_depth: int = 8,
                 decoder_num_heads: int = 16, mlp_ratio: float = 4.0, norm_pix_loss: bool = False,
                 mask_ratio: float = 0.75, norm_layer_eps: float = 1e-6, mean=None, std=None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        norm_layer = layer_norm(norm_layer_eps)
        self.in_chans, self.norm_pix_loss, self.mask_ratio = in_chans, norm_pix_loss, mask_ratio
        self.normalizer = InputNormalizer(*resolve_stats(mean, std, in_chans, IMAGENET_DEFAULT_MEAN,
                                                         IMAGENET_DEFAULT_STD))
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.patch_size = self.patch_embed.patch_size[0]
        self.grid_size = tuple(self.patch_embed.grid_size)
        self.num_patches = num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        dpr = calculate_drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer, proj_drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=dpr[i]) for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, self.patch_size ** 2 * in_chans, bias=True)
        self._init_weights()

    # -- initialisation as in the official code (fixed sin-cos position embeddings, xavier linears)
    def _init_weights(self) -> None:
        self.pos_embed.data.copy_(_sincos_with_cls(self.grid_size, self.pos_embed.shape[-1]))
        self.decoder_pos_embed.data.copy_(_sincos_with_cls(self.grid_size, self.decoder_pos_embed.shape[-1]))
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- masks
    def make_mask(self, sample_ids, seed: int = 0) -> torch.Tensor:
        """MAE random masking at this model's mask ratio, a pure function of (seed, sample id)."""
        return masking.random_mask(sample_ids, self.num_patches, self.mask_ratio, seed).to(self.cls_token.device)

    # -- forward passes
    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (cls + visible patches, after the final norm) for images in [0, 1]."""
        return self._encode_normalized(self.normalizer(x), mask)[0]

    def encode_with_ids(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder tokens and the indices of the visible patches they stand for (what `decode` needs)."""
        return self._encode_normalized(self.normalizer(x), mask)

    def _encode_normalized(self, xn: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = check_mask(mask, xn.shape[0], self.num_patches)
        tokens = self.patch_embed(xn) + self.pos_embed[:, 1:, :]
        n, length, dim = tokens.shape
        len_keep = length - int(mask[0].sum())
        # Visible patches in ascending index order; MAE's output does not depend on their order.
        ids_keep = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :len_keep]
        if not bool((mask.sum(1) == length - len_keep).all()):
            raise ValueError("every row of an MAE mask must mask the same number of patches")
        x = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(n, -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), ids_keep

    def decode(self, latent: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Decoder prediction N x L x p*p*C (normalised pixels, or per-patch normalised with norm_pix_loss)."""
        x = self.decoder_embed(latent)
        n, _, dim = x.shape
        full = self.mask_token.to(x.dtype).expand(n, self.num_patches, dim)
        full = full.scatter(1, ids_keep.unsqueeze(-1).expand(-1, -1, dim), x[:, 1:, :])
        x = torch.cat([x[:, :1, :], full], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:, :]

    def _patch_stats(self, xn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = patchify(xn, self.patch_size)
        return target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)

    def loss_from_pred(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                       reduction: str = "mean") -> torch.Tensor:
        """MAE's objective: per-patch MSE on masked patches against `target` (an image in [0, 1])."""
        tgt = patchify(self.normalizer(target), self.patch_size)
        if self.norm_pix_loss:
            mean, var = tgt.mean(dim=-1, keepdim=True), tgt.var(dim=-1, keepdim=True)
            tgt = (tgt - mean) / (var + 1.0e-6) ** 0.5
        per_patch = ((pred - tgt) ** 2).mean(dim=-1)
        m = mask.to(per_patch.dtype)
        if reduction == "none":  # per-sample loss
            return (per_patch * m).sum(1) / m.sum(1)
        return (per_patch * m).sum() / m.sum()

    def reconstruct(self, pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Prediction -> image in the input's [0, 1] space (not clamped), as MAE's visualisation does."""
        if self.norm_pix_loss:
            mean, var = self._patch_stats(self.normalizer(x))
            pred = pred * (var + 1.0e-6) ** 0.5 + mean
        img = unpatchify(pred, self.patch_size, self.in_chans, self.grid_size)
        return self.normalizer.inverse(img)

    def forward_mim(self, x: torch.Tensor, mask: torch.Tensor, target: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> MIMOutput:
        """Masked reconstruction of `x` (in [0, 1]); the loss is taken against `target` (default: `x`)."""
        latent, ids_keep = self._encode_normalized(self.normalizer(x), mask)
        pred = self.decode(latent, ids_keep)
        loss = self.loss_from_pred(pred, x if target is None else target, mask, reduction)
        return MIMOutput(loss=loss, pred=pred, reconstruction=self.reconstruct(pred, x), latent=latent)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> MIMOutput:
        return self.forward_mim(x, mask)

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's weights under the names a fine-tuned ViT classifier uses."""
        skip = ("decoder_", "mask_token", "norm.")
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}


def build_mae(**arch: Any) -> MaskedAutoencoderViT:
    check_arch("mae", arch, MAE_ARCH_KEYS)
    return MaskedAutoencoderViT(**arch)
