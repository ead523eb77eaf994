"""Train a recipe end to end: MIM pretraining, classifier fine-tuning, export of weights and card."""
from __future__ import annotations

import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn
from timm.optim import param_groups_layer_decay, param_groups_weight_decay

from benchmark.training import evaluate_quality

from .. import __version__
from ..checkpoints import load_checkpoint, save_weights
from ..data import load_dataset
from ..fileio import atomic_write_text
from ..models import build
from . import defenses as D
from . import distributed as dist_utils
from .loop import train_stage
from .objectives import FinetuneObjective, MIMPretrainObjective
from .recipes import Recipe

CLASSIFIER_FROM_MIM_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
                            "mean", "std", "norm_layer_eps")


def classifier_arch_from(mim_arch: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """The ViT classifier that fine-tunes this MIM encoder (MAE style: global average pooling + fc_norm)."""
    arch = {k: v for k, v in mim_arch.items() if k in CLASSIFIER_FROM_MIM_KEYS}
    arch.update(num_classes=num_classes, global_pool=True, qkv_bias=True)
    return arch


def _json_arch(arch: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in arch.items()}


def init_classifier_from_encoder(classifier: nn.Module, mim: nn.Module) -> None:
    """Copy the MIM encoder into the classifier; only the new pooling norm and head may stay untrained."""
    missing, unexpected = classifier.load_state_dict(mim.encoder_state_dict(), strict=False)
    fresh = {k for k in missing if not k.startswith(("fc_norm.", "head."))}
    if fresh or unexpected:
        raise RuntimeError(f"encoder transfer failed: missing {sorted(fresh)}, unexpected {sorted(unexpected)}")
    nn.init.trunc_normal_(classifier.head.weight, std=2e-5)
    nn.init.zeros_(classifier.head.bias)


def mim_weights_file(source: str) -> Path:
    """The MIM weights of a registry name with shipped weights, or of a trainer folder (ValueError otherwise)."""
    from ..registry import get_card
    folder = Path(source) if Path(source).is_dir() else None
    if folder is None:
        try:
            card = get_card(source)
        except KeyError as exc:
            raise ValueError(f"'{source}': neither a trainer folder nor a known model ({exc.args[0]})") from None
        if not card.local_dir:
            raise ValueError(f"'{source}': only shipped models or trainer folders can seed MIM weights")
        folder = Path(card.local_dir)
    path = folder / "mim.safetensors"
    if not path.is_file():
        raise ValueError(f"'{source}': no {path}")
    return path


def _init_mim_from(mim: nn.Module, source: str) -> str:
    """Start from another model's MIM weights (see `mim_weights_file`)."""
    path = mim_weights_file(source)
    load_checkpoint(mim, path)
    return str(path)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def _versions() -> dict[str, str]:
    import timm
    return {"mimbench": __version__, "torch": torch.__version__, "timm": timm.__version__,
            "python": platform.python_version()}


def write_card(out: Path, card: dict[str, Any]) -> None:
    atomic_write_text(out / "card.json", json.dumps(card, indent=1, sort_keys=False) + "\n")


_SEEDED = ("init_from", "mim_from")   # stage records that say where weights came from, not training


def train(recipe: Recipe, out: Path, device: torch.device, seed: int = 0, max_steps: Optional[int] = None,
          resume: bool = False, evaluate: bool = True, mim_from: Optional[str] = None) -> dict[str, Any]:
    """Run every stage of `recipe` and write `out/{mim,classifier}.safetensors` and `out/card.json`.

    `mim_from` (a shipped model's name or a trainer folder) skips MIM pretraining: the classifier is fine-tuned
    from that model's MIM weights, which are shipped unchanged, e.g. to give every variant a new fine-tuning."""
    out.mkdir(parents=True, exist_ok=True)
    dist_utils.init_from_env(device)
    torch.manual_seed(seed)
    train_set = load_dataset(recipe.dataset, "train")
    started = time.time()
    stages: dict[str, Any] = {}

    D.check_defenses(recipe.pretrain.defenses, "pretrain")
    D.check_defenses(recipe.finetune.defenses, "finetune")
    pre_arch = {"drop_path_rate": recipe.pretrain.drop_path_rate, **D.arch_overrides(recipe.pretrain.defenses)}
    mim = build("mae", **recipe.arch, **pre_arch)
    if mim_from:
        stages["mim_from"] = {"model": mim_from, "file": _init_mim_from(mim, mim_from), "pretraining": "skipped"}
    elif recipe.init_from:
        stages["init_from"] = {"model": recipe.init_from, "file": _init_mim_from(mim, recipe.init_from)}
    if "spectral_norm" in recipe.pretrain.defenses and not mim_from:   # shipped weights have it baked in
        D.apply_spectral_norm(mim)
    mim.to(device)
    if recipe.pretrain.epochs and not mim_from:
        objective = dist_utils.wrap(MIMPretrainObjective(mim, recipe.pretrain, seed), device)
        groups = param_groups_weight_decay(mim, recipe.pretrain.weight_decay)
        res = train_stage("pretrain", objective, groups, recipe.pretrain, train_set, objective, out, seed, device,
                          max_steps=max_steps, resume=resume)
        stages["pretrain"] = vars(res)
    D.remove_spectral_norm(mim)

    clf_arch = classifier_arch_from(recipe.arch, recipe.num_classes)
    ft_arch = {"drop_path_rate": recipe.finetune.drop_path_rate, **D.arch_overrides(recipe.finetune.defenses)}
    classifier = build("vit_classifier", **clf_arch, **ft_arch)
    init_classifier_from_encoder(classifier, mim)
    if "spectral_norm" in recipe.finetune.defenses:
        D.apply_spectral_norm(classifier)
    classifier.to(device)
    if recipe.finetune.epochs:
        objective = dist_utils.wrap(FinetuneObjective(classifier, recipe.finetune, seed), device)
        groups = param_groups_layer_decay(classifier, recipe.finetune.weight_decay,
                                          no_weight_decay_list=("cls_token", "pos_embed"),
                                          layer_decay=recipe.finetune.layer_decay)
        res = train_stage("finetune", objective, groups, recipe.finetune, train_set, objective, out, seed + 1,
                          device, max_steps=max_steps, resume=resume)
        stages["finetune"] = vars(res)
    D.remove_spectral_norm(classifier)

    if dist_utils.rank() != 0:
        return {}
    files = {"mim": {"file": "mim.safetensors", "sha256": save_weights(mim, out / "mim.safetensors")},
             "classifier": {"file": "classifier.safetensors",
                            "sha256": save_weights(classifier, out / "classifier.safetensors")}}
    complete = all(s["complete"] for k, s in stages.items() if k not in _SEEDED)
    card: dict[str, Any] = {
        "name": recipe.name, "family": "mae", "description": recipe.description, "dataset": recipe.dataset,
        "arch": _json_arch(recipe.arch), "classifier_arch": _json_arch(clf_arch),
        "preprocessing": {"resize": None, "crop": None, "interpolation": None,
                          "mean": list(recipe.arch["mean"]), "std": list(recipe.arch["std"])},
        "defenses": recipe.defenses, "recipe": recipe.to_dict(), "seed": seed,
        "data": {"train": f"{recipe.dataset} train split, {len(train_set)} images", "source": train_set.source},
        "training": {"stages": stages, "complete": complete, "max_steps": max_steps,
                     "seconds": round(sum(s["seconds"] for k, s in stages.items() if k not in _SEEDED), 1),
                     "seconds_this_run": round(time.time() - started, 1), "device": str(device),
                     "world_size": dist_utils.world_size()},
        "files": files, "versions": _versions(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {},
    }
    write_card(out, card)
    if evaluate and complete:
        # the card describes the shipped (fp16) files, not the fp32 weights in memory: one test image of the
        # ensemble-encoding variant flipped between the two, so its card disagreed with `benchmark.quality`
        load_checkpoint(mim, out / "mim.safetensors")
        load_checkpoint(classifier, out / "classifier.safetensors")
        card["metrics"] = evaluate_quality(mim, classifier, recipe.dataset, device=device)
        write_card(out, card)
    return card
