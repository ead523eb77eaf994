"""BEiT (Bao et al., ICLR 2022) as microsoft/unilm `beit/modeling_pretrain.VisionTransformerForMaskedImageModeling`
computes it, from timm's BEiT (layer scale `gamma_1/2`, `q_bias/v_bias`, shared `RelativePositionBias`).

`MaskedBeitBackbone` is timm's `Beit` plus BEiT's learned mask token; SimMIM's ViT encoder is the same network.
Key names are the official ones; `relative_position_index` buffers are recomputed, never read from a file.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.beit import Beit

from .. import masking
from ._common import BEIT_MEAN, BEIT_STD, InputNormalizer, MIMOutput, check_arch, check_mask, layer_norm, resolve_stats

BACKBONE_ARCH_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
                      "qkv_bias", "init_values", "use_abs_pos_emb", "use_rel_pos_bias", "use_shared_rel_pos_bias")
# The masking keys are spelled as unilm's run_beit_pretraining.py spells its arguments.
BEIT_ARCH_KEYS = BACKBONE_ARCH_KEYS + ("vocab_size", "num_mask_patches", "min_mask_patches_per_block",
                                       "max_mask_patches_per_block")
BEIT_B_NUM_MASK_PATCHES = 75  # of 196 patches (14 x 14), unilm's setting for 224 x 224 images

Tokenizer = Callable[[torch.Tensor], torch.Tensor]


class MaskedBeitBackbone(Beit):
    """timm's BEiT ViT with a learned mask token that replaces the embeddings of masked patches."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: Optional[float] = 0.1, use_abs_pos_emb: bool = False, use_rel_pos_bias: bool = False,
                 use_shared_rel_pos_bias: bool = True, norm_layer_eps: float = 1e-6, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=0, global_pool="",
                         embed_dim=embed_dim, depth=depth, num_heads=num_heads, qkv_bias=qkv_bias,
                         mlp_ratio=mlp_ratio, pos_drop_rate=drop_rate, proj_drop_rate=drop_rate,
                         attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
                         norm_layer=layer_norm(norm_layer_eps), init_values=init_values or None,
                         use_abs_pos_emb=use_abs_pos_emb, use_rel_pos_bias=use_rel_pos_bias,
                         use_shared_rel_pos_bias=use_shared_rel_pos_bias)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        trunc_normal_(self.mask_token, std=0.02)
        self.patch_size = self.patch_embed.patch_size[0]
        self.grid_size = tuple(self.patch_embed.grid_size)
        self.num_patches = self.patch_embed.num_patches

    def forward_masked(self, xn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Tokens N x (1 + L) x D after the final norm, for normalised images and a bool N x L mask."""
        x = self.patch_embed(xn)
        w = mask.unsqueeze(-1).to(x.dtype)
        x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        x = self.pos_drop(x)
        rel_pos_bias = self.rel_pos_bias() if self.rel_pos_bias is not None else None
        for blk in self.blocks:
            x = blk(x, shared_rel_pos_bias=rel_pos_bias)
        return self.norm(x)


class BeitForMaskedImageModeling(MaskedBeitBackbone):
    """BEiT pre-training model: predicts the visual token of every patch (`lm_head`), official key names.

    Images in [0, 1], normalised inside. The objective needs visual tokens from a tokenizer (BEiT used
    DALL-E's d-VAE); without one `loss` is None, and attacks use the clean prediction's tokens instead.
    """

    family = "beit"

    def __init__(self, vocab_size: int = 8192, num_mask_patches: Optional[int] = None,
                 min_mask_patches_per_block: int = 16, max_mask_patches_per_block: Optional[int] = None,
                 mean=None, std=None, **backbone: Any) -> None:
        super().__init__(**backbone)
        in_chans = self.patch_embed.proj.in_channels
        self.normalizer = InputNormalizer(*resolve_stats(mean, std, in_chans, BEIT_MEAN, BEIT_STD))
        self.lm_head = nn.Linear(self.embed_dim, vocab_size)
        trunc_normal_(self.lm_head.weight, std=0.02)
        nn.init.zeros_(self.lm_head.bias)
        if num_mask_patches is None:  # unilm's 75 of 196, scaled to this grid
            num_mask_patches = int(round(BEIT_B_NUM_MASK_PATCHES * self.num_patches / 196))
        if not 0 < num_mask_patches < self.num_patches:
            raise ValueError(f"num_mask_patches must be in (0, {self.num_patches}), got {num_mask_patches}")
        self.num_mask_patches = num_mask_patches
        self.min_mask_patches_per_block = min_mask_patches_per_block
        self.max_mask_patches_per_block = max_mask_patches_per_block
        object.__setattr__(self, "_tokenizer", None)  # not a submodule: never part of the state dict

    # -- visual tokenizer (optional, user-supplied)
    @property
    def tokenizer(self) -> Optional[Tokenizer]:
        return self._tokenizer

    def set_tokenizer(self, tokenizer: Optional[Tokenizer]) -> None:
        """Images in [0, 1] (N x C x H x W) -> token ids N x L on this model's patch grid, e.g. a DALL-E d-VAE
        wrapped with its own preprocessing. Kept out of the state dict; moving it to a device is the caller's job."""
        object.__setattr__(self, "_tokenizer", tokenizer)

    # -- masks
    def make_mask(self, sample_ids, seed: int = 0) -> torch.Tensor:
        """BEiT blockwise masking (unilm's MaskingGenerator), a pure function of (seed, sample id)."""
        mask = masking.blockwise_mask(sample_ids, self.grid_size, self.num_mask_patches,
                                      self.min_mask_patches_per_block, self.max_mask_patches_per_block, seed)
        return mask.to(self.cls_token.device)

    # -- forward passes
    def _targets(self, x: torch.Tensor, target: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if target is not None and not target.is_floating_point():
            return target.long()
        if self.tokenizer is None:
            if target is not None:
                raise ValueError("BEiT's loss needs visual tokens: pass token ids (N x L) as target, or set a "
                                 "tokenizer with set_tokenizer()")
            return None
        with torch.no_grad():  # discrete targets carry no gradient
            tokens = self.tokenizer(x if target is None else target)
        return tokens.long().to(x.device)

    def loss_from_pred(self, pred: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                       reduction: str = "mean") -> torch.Tensor:
        """BEiT's objective: cross-entropy of the masked positions against their visual tokens."""
        if tokens.shape != mask.shape:
            raise ValueError(f"token targets must be N x L = {tuple(mask.shape)}, got {tuple(tokens.shape)}")
        if reduction == "none":
            ce = F.cross_entropy(pred.flatten(0, 1), tokens.flatten(), reduction="none").view(mask.shape)
            m = mask.to(ce.dtype)
            return (ce * m).sum(1) / m.sum(1).clamp_min(1)
        return F.cross_entropy(pred[mask], tokens[mask])

    def forward_mim(self, x: torch.Tensor, mask: torch.Tensor, target: Optional[torch.Tensor] = None,
                    reduction: str = "mean") -> MIMOutput:
        """Token logits N x L x vocab for all positions of `x` (in [0, 1]) with `mask`'s patches masked.

        `target`: token ids N x L, or an image whose tokens (from the tokenizer) are the targets; by default
        the tokenizer's tokens of `x` when a tokenizer is set, else no loss.
        """
        mask = check_mask(mask, x.shape[0], self.num_patches)
        latent = self.forward_masked(self.normalizer(x), mask)
        pred = self.lm_head(latent[:, 1:])
        tokens = self._targets(x, target)
        loss = self.loss_from_pred(pred, tokens, mask, reduction) if tokens is not None else None
        return MIMOutput(loss=loss, pred=pred, reconstruction=None, latent=latent)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> MIMOutput:
        return self.forward_mim(x, mask)


def backbone_kwargs(arch: dict[str, Any]) -> dict[str, Any]:
    """The keys of `arch` that the shared BEiT-style backbone takes."""
    keys = set(BACKBONE_ARCH_KEYS) | {"norm_layer_eps", "drop_rate", "attn_drop_rate", "drop_path_rate"}
    return {k: v for k, v in arch.items() if k in keys}


def build_beit(**arch: Any) -> BeitForMaskedImageModeling:
    check_arch("beit", arch, BEIT_ARCH_KEYS)
    own = {k: arch[k] for k in ("vocab_size", "num_mask_patches", "min_mask_patches_per_block",
                                "max_mask_patches_per_block", "mean", "std") if k in arch}
    return BeitForMaskedImageModeling(**own, **backbone_kwargs(arch))
