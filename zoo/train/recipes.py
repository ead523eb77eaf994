"""Named training recipes: architecture, data, schedules and the defenses they switch on."""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..registries import Registry

FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)
AMP_MODES = ("cuda", "bf16", "off")

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
    # bf16 autocast: "cuda" on CUDA only (fp32 on the CPU: how the shipped zoo was trained), "bf16" on every device
    # (CPUs with AMX/AVX512-BF16 run the matmuls ~20x faster than fp32), "off" never
    amp: str = "cuda"


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

    def with_overrides(self, epochs: Optional[float] = None, batch_size: Optional[int] = None,
                       amp: Optional[str] = None) -> "Recipe":
        """A copy with every (non-empty) stage's epochs, batch size and/or autocast mode replaced."""
        if amp is not None and amp not in AMP_MODES:
            raise ValueError(f"amp '{amp}': expected one of {', '.join(AMP_MODES)}")
        r = copy.deepcopy(self)
        for stage in (r.pretrain, r.finetune):
            if epochs is not None and stage.epochs:
                stage.epochs = epochs
            if batch_size is not None:
                stage.batch_size = batch_size
            if amp is not None:
                stage.amp = amp
        return r

    def with_setting(self, assignment: str) -> "Recipe":
        """A copy with one defense setting replaced, from 'STAGE.DEFENSE.KEY=VALUE' (VALUE read as JSON when it
        parses, else as a string), e.g. 'finetune.adversarial_finetune.steps=3'; KeyError names what is unknown."""
        from .defenses import DEFAULTS
        path, sep, raw = assignment.partition("=")
        parts = path.split(".")
        if not sep or len(parts) != 3:
            raise KeyError(f"--set {assignment}: expected STAGE.DEFENSE.KEY=VALUE, e.g. "
                           f"finetune.adversarial_finetune.steps=3")
        stage_name, defense, key = parts
        if stage_name not in ("pretrain", "finetune"):
            raise KeyError(f"--set {assignment}: stage '{stage_name}' (expected pretrain or finetune)")
        r = copy.deepcopy(self)
        stage = getattr(r, stage_name)
        if defense not in stage.defenses:
            raise KeyError(f"--set {assignment}: recipe '{self.name}' has no defense '{defense}' in its {stage_name} "
                           f"stage (it has: {', '.join(stage.defenses) or 'none'})")
        if key not in DEFAULTS.get(defense, {}):
            raise KeyError(f"--set {assignment}: defense '{defense}' has no setting '{key}' (known: "
                           f"{', '.join(sorted(DEFAULTS.get(defense, {})))})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        stage.defenses[defense] = {**stage.defenses[defense], key: value}
        return r


RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe(recipe: Recipe, replace: bool = False) -> Recipe:
    return RECIPES.register(recipe.name, recipe, replace=replace)


def list_recipes(filter: Optional[str] = None) -> list[str]:
    return RECIPES.list(filter, sort=True)


def get_recipe(name: str) -> Recipe:
    """A copy of the named recipe (UnknownNameError, a KeyError, naming the known ones)."""
    return copy.deepcopy(RECIPES.get(name))


register_recipe(Recipe(
    name="mae_vit_t_fmnist",
    description="Undefended baseline: MAE pretraining (mask 0.75) and fine-tuning of a tiny ViT on Fashion-MNIST.",
    dataset="fashion_mnist",
    arch=MAE_VIT_T_FMNIST_ARCH,
    num_classes=10,
    pretrain=StageConfig(epochs=10, batch_size=256, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95),
                         warmup_epochs=1.0),
    finetune=StageConfig(epochs=20, batch_size=256, lr=2e-3, weight_decay=0.05, warmup_epochs=1.0,
                         layer_decay=0.85, label_smoothing=0.1, drop_path_rate=0.05, augment=True),
))


# -- Defended variants of the embedded default ---------------------------------------------------------------
# Every variant starts from the baseline's MIM weights. MIM-side variants continue pretraining for a few epochs
# with their defense (2 epochs); then every variant (the control included) gets the same adversarial fine-tuning of a
# fresh classifier on its own encoder, so the table isolates what the MIM-side defense adds.
ADV_FINETUNE_EPS = 0.1


def _defended_finetune(extra: Optional[dict[str, dict[str, Any]]] = None) -> StageConfig:
    """The zoo's shared fine-tuning: PGD-3 AT (eps 0.1) + 0.5 x clean CE, 15 epochs in bf16 (docs/DEFENDED_ZOO.md,
    attempt 4: 0.857 clean, 0.724 PGD-20 at eps 0.1 on the whole test set, against 0.830 / 0.642 for the 5 epochs of
    FGSM-RS it replaces)."""
    return StageConfig(epochs=15, batch_size=256, lr=2e-3, weight_decay=0.05, warmup_epochs=0.5, layer_decay=0.85,
                       label_smoothing=0.0, drop_path_rate=0.05, augment=True, amp="bf16",
                       defenses=extra or {"adversarial_finetune": {"attack": "pgd", "eps": ADV_FINETUNE_EPS,
                                                                   "clean_weight": 0.5, "steps": 3}})


def _defended_pretrain(defenses: dict[str, dict[str, Any]], epochs: float = 2) -> StageConfig:
    return StageConfig(epochs=epochs, batch_size=256, lr=5e-4, weight_decay=0.05, betas=(0.9, 0.95),
                       warmup_epochs=0.25, defenses=defenses)


def _variant(suffix: str, description: str, pretrain: Optional[dict[str, dict[str, Any]]],
             finetune: Optional[StageConfig] = None) -> Recipe:
    return register_recipe(Recipe(
        name=f"mae_vit_t_fmnist_{suffix}", description=description, dataset="fashion_mnist",
        arch=MAE_VIT_T_FMNIST_ARCH, num_classes=10,
        pretrain=_defended_pretrain(pretrain) if pretrain else StageConfig(epochs=0),
        finetune=finetune or _defended_finetune(), init_from="mae_vit_t_fmnist"))


_variant("advft", "Control: the baseline's MIM weights, then the shared adversarial fine-tuning (PGD-3 AT, eps 0.1, "
         "plus 0.5 x clean CE, 15 epochs, bf16).",
         None)
_variant("trades", "The baseline's MIM weights, then TRADES fine-tuning (beta 6, eps 0.1, 3 steps) on the shared "
         "schedule.", None, _defended_finetune({"trades": {"eps": ADV_FINETUNE_EPS, "steps": 3, "beta": 6.0}}))
_variant("adversarial_advft", "Adversarial MIM pretraining (1-step PGD with random start on the MIM loss, eps 0.1, "
         "joint clean + adv), then the shared adversarial fine-tuning.",
         {"adversarial": {"eps": 0.1, "steps": 1, "joint": True}})
_variant("mimir_advft", "MIMIR pretraining (adversarial input, clean target, HSIC penalty; 1-step PGD eps 0.1), "
         "then the shared adversarial fine-tuning.", {"mimir": {"eps": 0.1, "steps": 1, "hsic_weight": 1e-5}})
_variant("denoising_advft", "Denoising MIM pretraining (MIM loss + ||f(x_adv) - x||^2 over the whole image, 1-step PGD "
         "eps 0.1), then the shared adversarial fine-tuning.", {"denoising": {"eps": 0.1, "steps": 1, "weight": 1.0}})
_variant("saliency_masking_advft", "Saliency-guided masking (Sobel magnitude), then the shared adversarial "
         "fine-tuning.", {"saliency_masking": {}})
_variant("entropy_masking_advft", "Entropy-guided masking (patch intensity entropy), then the shared adversarial "
         "fine-tuning.", {"entropy_masking": {}})
_variant("contrastive_advft", "Contrastive alignment (InfoNCE) of clean and adversarial latents during MIM "
         "pretraining, then the shared adversarial fine-tuning.", {"contrastive": {"eps": 0.1, "steps": 1}})
_variant("ensemble_encoding_advft", "Ensemble encoding of clean and noisy copies during MIM pretraining, then the "
         "shared adversarial fine-tuning.", {"ensemble_encoding": {"sigma": 0.1}})
_variant("regularized_advft", "Stochastic depth, dropout and spectral normalisation of the encoder during MIM "
         "pretraining, then the shared adversarial fine-tuning.",
         {"stochastic_depth": {"rate": 0.1}, "dropout": {"rate": 0.1}, "spectral_norm": {}})


# -- GPU recipes with MIMIR's published settings (documented, not run on this machine) ------------------------
_VIT_B = dict(embed_dim=768, depth=12, num_heads=12, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
              mlp_ratio=4.0, norm_pix_loss=True, mask_ratio=0.75)
register_recipe(Recipe(
    name="mae_vit_b_cifar10_mimir",
    description="MIMIR on CIFAR-10 (GPU): ViT-B/2, 800 pretraining epochs, mask 0.75, norm_pix_loss, 1-step PGD "
                "eps 8/255, HSIC 1e-5; fine-tuning 50 epochs PGD-10 AT eps 8/255.",
    dataset="cifar10", num_classes=10,
    arch=dict(img_size=32, patch_size=2, in_chans=3, **_VIT_B, mean=(0.4914, 0.4822, 0.4465),
              std=(0.2470, 0.2435, 0.2616)),
    pretrain=StageConfig(epochs=800, batch_size=512, lr=1.5e-4 * 512 / 256, weight_decay=0.05, betas=(0.9, 0.95),
                         warmup_epochs=40, defenses={"mimir": {"eps": 8 / 255, "steps": 1, "hsic_weight": 1e-5}}),
    finetune=StageConfig(epochs=50, batch_size=128, lr=5e-4 * 128 / 256, weight_decay=0.05, warmup_epochs=5,
                         layer_decay=0.65, label_smoothing=0.1, drop_path_rate=0.1, augment=True,
                         defenses={"adversarial_finetune": {"attack": "pgd", "eps": 8 / 255, "steps": 10,
                                                            "alpha": 2 / 255}}),
    runs_here=False))
register_recipe(Recipe(
    name="mae_vit_b_imagenet_mimir",
    description="MIMIR on ImageNet (GPU cluster): ViT-B/16, 800 pretraining epochs, mask 0.75, norm_pix_loss, 1-step "
                "PGD eps 8/255, HSIC 1e-5; adversarial fine-tuning PGD eps 4/255.",
    dataset="imagenet", num_classes=1000,
    arch=dict(img_size=224, patch_size=16, in_chans=3, **_VIT_B, mean=(0.485, 0.456, 0.406),
              std=(0.229, 0.224, 0.225)),
    pretrain=StageConfig(epochs=800, batch_size=4096, lr=1.5e-4 * 4096 / 256, weight_decay=0.05, betas=(0.9, 0.95),
                         warmup_epochs=40, defenses={"mimir": {"eps": 8 / 255, "steps": 1, "hsic_weight": 1e-5}}),
    finetune=StageConfig(epochs=100, batch_size=1024, lr=5e-4 * 1024 / 256, weight_decay=0.05, warmup_epochs=5,
                         layer_decay=0.65, label_smoothing=0.1, drop_path_rate=0.1, augment=True,
                         defenses={"adversarial_finetune": {"attack": "pgd", "eps": 4 / 255, "steps": 3}}),
    runs_here=False))
