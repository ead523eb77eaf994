"""Named training recipes: architecture, data, schedules and the defenses they switch on."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)

# The embedded default's architecture: a 128-d, 4-block ViT on Fashion-MNIST's native 1 x 28 x 28 (patch 4).
MAE_VIT_T_FMNIST_ARCH: dict[str, Any] = dict(
    img_size=28, patch_size=4, in_chans=1, embed_dim=128, depth=4, num_heads=4, decoder_embed_dim=64,
    decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0, norm_pix_loss=False, mask_ratio=0.75,
    mean=FMNIST_MEAN, std=FMNIST_STD)


@dataclass
class StageConfig:
    """One training stage (MIM pretraining or classifier fine-tuning)."""

    epochs: float = 0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 1.0
    min_lr: float = 1e-5
    layer_decay: float = 1.0          # fine-tuning: lr scale per block from the head down (BEiT/MAE style)
    label_smoothing: float = 0.0
    drop_path_rate: float = 0.0
    augment: bool = False             # random 2-pixel shifts and horizontal flips
    grad_clip: Optional[float] = None
    defenses: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> its settings


@dataclass
class Recipe:
    name: str
    description: str
    dataset: str
    arch: dict[str, Any]
    num_classes: int
    pretrain: StageConfig
    finetune: StageConfig
    init_from: Optional[str] = None   # start from another recipe's shipped weights instead of pretraining
    runs_here: bool = True            # False: documented GPU recipe, too large for this machine

    @property
    def defenses(self) -> list[str]:
        names = list(self.pretrain.defenses) + list(self.finetune.defenses)
        return sorted(set(names))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["defenses"] = self.defenses
        return d

    def with_overrides(self, epochs: Optional[float] = None) -> "Recipe":
        r = copy.deepcopy(self)
        if epochs is not None:
            for stage in (r.pretrain, r.finetune):
                if stage.epochs:
                    stage.epochs = epochs
        return r


_RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    _RECIPES[recipe.name] = recipe
    return recipe


def list_recipes() -> list[str]:
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    if name not in _RECIPES:
        raise KeyError(f"unknown recipe '{name}'; known: {', '.join(list_recipes())}")
    return copy.deepcopy(_RECIPES[name])


register_recipe(Recipe(
    name="mae_vit_t_fmnist",
    description="Undefended baseline: MAE pretraining (mask 0.75) and fine-tuning of a tiny ViT on Fashion-MNIST.",
    dataset="fashion_mnist",
    arch=MAE_VIT_T_FMNIST_ARCH,
    num_classes=10,
    pretrain=StageConfig(epochs=10, batch_size=256, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95),
                         warmup_epochs=1.0),
    finetune=StageConfig(epochs=15, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_epochs=1.0,
                         layer_decay=0.75, label_smoothing=0.1, drop_path_rate=0.1, augment=True),
))
