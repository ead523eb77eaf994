"""Helpers shared by the tests: official fixture architectures and small models."""
from __future__ import annotations

import json
from pathlib import Path

import torch

import zoo

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    """../shared beside the repository (a git worktree under a folder of worktrees looks one level higher)."""
    for parent in REPO.parents[:2]:
        if (parent / "shared" / "fixtures").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


SHARED = _shared_dir()
OFFICIAL = SHARED / "fixtures" / "official"


def official_arch(stem: str) -> tuple[str, dict]:
    arch = json.loads((OFFICIAL / f"{stem}.json").read_text())
    family = arch.pop("family")
    arch.pop("official", None)
    return family, arch


def tiny_mae(**overrides) -> torch.nn.Module:
    arch = dict(img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16,
                decoder_depth=1, decoder_num_heads=2, mean=0.286, std=0.353)
    arch.update(overrides)
    torch.manual_seed(0)
    return zoo.build("mae", **arch).eval()


def tiny_classifier(**overrides) -> torch.nn.Module:
    arch = dict(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=1, num_heads=2,
                mean=0.286, std=0.353)
    arch.update(overrides)
    torch.manual_seed(0)
    return zoo.build("vit_classifier", **arch).eval()
