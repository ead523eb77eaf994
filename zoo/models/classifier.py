"""Fine-tuned classifiers, official keys, inputs in [0, 1] normalised inside the model.

- `vit_classifier`: facebookresearch/mae `models_vit.VisionTransformer` (timm ViT); `global_pool=True` averages
  the patch tokens and applies `fc_norm` (MAE fine-tuning), False uses the class token after `norm`.
- `beit_classifier`: the BEiT-style ViT that BEiT and SimMIM fine-tune (timm BEiT: layer scale, relative
  position bias per block, mean pooling + `fc_norm`).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from timm.models.beit import Beit
from timm.models.vision_transformer import VisionTransformer

from ._common import (
    BEIT_MEAN,
    BEIT_STD,
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    InputNormalizer,
    check_arch,
    layer_norm,
    resolve_stats,
)

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


# -- BEiT-style fine-tuned ViT (BEiT's and SimMIM's classifiers) -----------------------------------------------
BEIT_CLASSIFIER_ARCH_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
                             "mlp_ratio", "qkv_bias", "init_values", "use_abs_pos_emb", "use_rel_pos_bias",
                             "use_shared_rel_pos_bias", "use_mean_pooling")


class BeitClassifier(Beit):
    """timm's BEiT as unilm `beit/modeling_finetune.VisionTransformer` (and SimMIM's ViT) runs it, normalising inside.

    `use_mean_pooling=True` averages the patch tokens and applies `fc_norm` (the published fine-tuned files);
    False uses the class token after `norm`. Official key names; `relative_position_index` is recomputed.
    """

    family = "beit_classifier"

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, init_values: Optional[float] = 0.1, use_abs_pos_emb: bool = False,
                 use_rel_pos_bias: bool = True, use_shared_rel_pos_bias: bool = False, use_mean_pooling: bool = True,
                 norm_layer_eps: float = 1e-6, mean=None, std=None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                         global_pool="avg" if use_mean_pooling else "token", embed_dim=embed_dim, depth=depth,
                         num_heads=num_heads, qkv_bias=qkv_bias, mlp_ratio=mlp_ratio, pos_drop_rate=drop_rate,
                         proj_drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate,
                         norm_layer=layer_norm(norm_layer_eps), init_values=init_values or None,
                         use_abs_pos_emb=use_abs_pos_emb, use_rel_pos_bias=use_rel_pos_bias,
                         use_shared_rel_pos_bias=use_shared_rel_pos_bias)
        self.normalizer = InputNormalizer(*resolve_stats(mean, std, in_chans, BEIT_MEAN, BEIT_STD))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the head, for images in [0, 1]."""
        return self.forward_head(self.forward_features(self.normalizer(x)), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.normalizer(x))


def build_beit_classifier(**arch: Any) -> BeitClassifier:
    check_arch("beit_classifier", arch, BEIT_CLASSIFIER_ARCH_KEYS)
    return BeitClassifier(**arch)
