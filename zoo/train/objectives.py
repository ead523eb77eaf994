"""Training objectives as modules whose forward returns (loss, logs), so DDP sees every parameter use."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import masking
from .recipes import StageConfig


def random_shift_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translations of up to `pad` pixels (zero fill) and horizontal flips, vectorised over the batch."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = torch.rand(n, generator=generator).to(x.device) < 0.5
    rows = oy[:, None] + torch.arange(h, device=x.device)[None]
    cols = ox[:, None] + torch.arange(w, device=x.device)[None]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator per (seed, step), so a resumed run draws what the uninterrupted run drew."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


class MIMPretrainObjective(nn.Module):
    """Plain MIM pretraining: the family's own loss on a fresh random mask per sample and step."""

    def __init__(self, model: nn.Module, cfg: StageConfig, seed: int) -> None:
        super().__init__()
        self.model, self.cfg, self.seed = model, cfg, seed

    def train_mask(self, x: torch.Tensor, step: int) -> torch.Tensor:
        noise = torch.rand(x.shape[0], self.model.num_patches, generator=step_generator(self.seed, step))
        return masking.mask_from_noise(noise, self.model.mask_ratio).to(x.device)

    def forward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        out = self.model.forward_mim(x, self.train_mask(x, step))
        return out.loss, {}


class FinetuneObjective(nn.Module):
    """Cross-entropy fine-tuning of the classifier (label smoothing, optional shift/flip augmentation)."""

    def __init__(self, classifier: nn.Module, cfg: StageConfig, seed: int) -> None:
        super().__init__()
        self.classifier, self.cfg, self.seed = classifier, cfg, seed

    def prepare(self, x: torch.Tensor, step: int) -> torch.Tensor:
        return random_shift_flip(x, step_generator(self.seed, step, 1)) if self.cfg.augment else x

    def forward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        x = self.prepare(x, step)
        logits = self.classifier(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        return loss, {"acc": (logits.argmax(1) == y).float().mean()}
