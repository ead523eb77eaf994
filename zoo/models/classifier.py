"""ViT classifier as facebookresearch/mae `models_vit.VisionTransformer` runs it (timm ViT, official keys).

`global_pool=True` averages the patch tokens and applies `fc_norm` (MAE fine-tuning); False uses the class
token after `norm`. Inputs in [0, 1]; the model normalises them itself.
"""
from __future__ import annotations

from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer

from ._common import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, InputNormalizer, check_arch, layer_norm,
                      resolve_stats)

CLASSIFIER_ARCH_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
                        "mlp_ratio", "qkv_bias", "global_pool")


class ViTClassifier(VisionTransformer):
    """timm's VisionTransformer with input normalisation inside, so attacks work in [0, 1] pixel space."""

    family = "vit_classifier"

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, global_pool: bool = True, norm_layer_eps: float = 1e-6, mean=None,
                 std=None, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                         global_pool="avg" if global_pool else "token", embed_dim=embed_dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                         norm_layer=layer_norm(norm_layer_eps), drop_rate=drop_rate,
                         attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate)
        self.normalizer = InputNormalizer(*resolve_stats(mean, std, in_chans, IMAGENET_DEFAULT_MEAN,
                                                         IMAGENET_DEFAULT_STD))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the head, for images in [0, 1]."""
        return self.forward_head(self.forward_features(self.normalizer(x)), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.normalizer(x))


def build_vit_classifier(**arch: Any) -> ViTClassifier:
    check_arch("vit_classifier", arch, CLASSIFIER_ARCH_KEYS)
    return ViTClassifier(**arch)
