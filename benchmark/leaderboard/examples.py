"""A few attacked examples of a run, saved beside the entry for the reconstruction grid of the reports.

The file (`<dataset>/examples/<model>.safetensors`) holds images as uint8 and the perturbation as fp16, so an
ImageNet model's grid costs a few MB at most, and the picture can be redrawn without the model. The examples
themselves are made by `benchmark.runner.examples.capture_examples`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.checkpoints import sorted_metadata_bytes
from zoo.fileio import atomic_write_bytes

from .entries import safe_name

EXAMPLES_DIR = "examples"


def examples_relpath(model: str, variant: str = "") -> str:
    """Where a model's examples live, relative to the dataset's leaderboard folder (`variant` 'universal': the
    examples of a universal perturbation, kept apart from the white-box ones)."""
    return f"{EXAMPLES_DIR}/{safe_name(model)}{'.' + variant if variant else ''}.safetensors"


def save_examples(path: Path, ex: dict[str, Any]) -> None:
    """Write the examples atomically: images as uint8, the perturbation as fp16, the cell in the metadata."""
    from safetensors.torch import save

    def u8(t: torch.Tensor) -> torch.Tensor:
        return (t.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()

    tensors = {"clean": u8(ex["clean"]), "recon_clean": u8(ex["recon_clean"]),
               "recon_attacked": u8(ex["recon_attacked"]), "mask_pixels": u8(ex["mask_pixels"]),
               "delta": ex["delta"].to(torch.float16).contiguous(),
               "sample_ids": ex["sample_ids"].to(torch.int64).contiguous(),
               "psnr_clean": ex["psnr_clean"].float().contiguous(),
               "psnr_attacked": ex["psnr_attacked"].float().contiguous()}
    data = save(tensors, metadata={k: str(v) for k, v in ex["meta"].items()})
    atomic_write_bytes(Path(path), sorted_metadata_bytes(data))  # same examples, same bytes


def load_examples(path: Path) -> dict[str, Any]:
    """The saved examples as float numpy arrays in [0, 1] (the perturbation in pixel units) plus their metadata."""
    from safetensors import safe_open
    out: dict[str, Any] = {}
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        for key in f.keys():
            t = f.get_tensor(key)
            out[key] = (t.float() / 255).numpy() if t.dtype == torch.uint8 else t.float().numpy()
    out["sample_ids"] = out["sample_ids"].astype(np.int64)
    out["meta"] = meta
    return out
