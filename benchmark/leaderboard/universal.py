"""A run's universal perturbations, saved beside its entry: `<dataset>/universal/<model>.safetensors`.

One float32 tensor (C x H x W, pixel units) per loss and budget, named by its row label (`universal_mim|Linf|0.1`),
and the crafting settings in the metadata, so the perturbations can be added to other images, checked against
their budget and drawn without the model. Written atomically under the board lock with the entry
(`submit.publish`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.fileio import atomic_write_bytes

from .entries import safe_name

UNIVERSAL_DIR = "universal"

__all__ = ["UNIVERSAL_DIR", "load_universal", "save_universal", "universal_relpath"]


def universal_relpath(model: str) -> str:
    """Where a model's universal perturbations live, relative to the dataset's leaderboard folder."""
    return f"{UNIVERSAL_DIR}/{safe_name(model)}.safetensors"


def save_universal(path: Path, perturbations: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    from safetensors.torch import save
    tensors = {label: t.detach().float().cpu().contiguous() for label, t in perturbations.items()}
    atomic_write_bytes(Path(path), save(tensors, metadata={"settings": json.dumps(meta, sort_keys=True)}))


def load_universal(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(row label -> perturbation C x H x W, crafting settings)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("settings", "{}"))
        return {key: f.get_tensor(key) for key in f.keys()}, meta
