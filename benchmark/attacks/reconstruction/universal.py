"""A universal perturbation of a pretrained MIM model: one delta for every image (UAP, Moosavi-Dezfooli et al.
2017), crafted on training images only and then added unchanged to every test image.

Crafting is stochastic projected gradient ascent on delta over minibatches (the SGD form of UAP that PAP/L4A and
later universal attacks use, rather than DeepFool's iterations): `steps` sign steps of `alpha` over batches of
`batch` of the first `images` training images, reshuffled every epoch, from a random start in the ball. Losses
(label-free: no classifier, no labels):
- `feature`: the squared distance between the encoder's features of the perturbed and the clean images, every
  patch visible (the view a fine-tuned classifier has);
- `mim`: the model's MIM loss of the perturbed images against the clean ones, each training image under a fresh
  random mask of the family's scheme every epoch (the attacker does not know the evaluation masks).
Each image the perturbation is added to is clipped to [0, 1]. Everything random is a pure function of the seed.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from zoo import masking

from ..ascent import BallStep, Evaluation, projected_ascent
from ..base import Attack, eval_mode, seeded
from ..registry import register_attack
from .base import mim_attack_loss
from .feature_pgd import encoder_features, feature_distance, full_view

LOSSES = ("feature", "mim")
START_STREAM = 7            # the random start's stream (sample id 0 of the seed)
ORDER_STREAM = 8            # the per-epoch shuffles' stream (sample id = epoch)
MASK_SEED_OFFSET = 20_000   # the crafting masks use seeds the evaluation never uses

__all__ = ["LOSSES", "UniversalPerturbation"]


@register_attack
class UniversalPerturbation(Attack):
    """`craft(train_images, train_ids)` once, then `attack(x, mask, sample_ids)` adds the same delta to every x."""

    name = "universal"
    target = "reconstruction"
    cell_fields = ("steps", "alpha", "random_start")

    def __init__(self, model, eps: float, *, norm: str = "Linf", loss: str = "feature", images: int = 2000,
                 batch: int = 50, steps: int = 100, alpha: float = 0.0, random_start: bool = True,
                 seed: int = 0) -> None:
        """`alpha` 0: eps / 10."""
        super().__init__(model, eps, norm=norm, seed=seed)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if int(images) < 1 or int(batch) < 1 or int(steps) < 0:
            raise ValueError("images and batch must be positive and steps >= 0")
        self.loss, self.images, self.batch, self.steps = loss, int(images), int(batch), int(steps)
        self.alpha = float(alpha) if alpha else self.eps / 10
        self.random_start = bool(random_start)
        self.delta: Optional[torch.Tensor] = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.norm}, eps={self.eps:g}, loss={self.loss}, images={self.images}, "
                f"batch={self.batch}, steps={self.steps}, alpha={self.alpha:g})")

    # -- crafting
    def _start(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        if not self.random_start:
            return torch.zeros(1, *shape, device=device)
        rng = masking.sample_rng(self.seed, 0, START_STREAM)
        if self.norm == "Linf":
            start = rng.uniform(-self.eps, self.eps, size=shape)
        else:
            d = rng.standard_normal(size=shape)
            start = d / (np.sqrt((d ** 2).sum()) + 1e-12) * self.eps * rng.uniform() ** (1.0 / d.size)
        return torch.from_numpy(start).to(device=device, dtype=torch.float32).unsqueeze(0)

    def _schedule(self, n: int) -> list[tuple[int, np.ndarray]]:
        """(epoch, positions) of every step's minibatch: each epoch a fresh permutation of the n images."""
        out: list[tuple[int, np.ndarray]] = []
        epoch = 0
        while len(out) < self.steps:
            order = masking.sample_rng(self.seed, epoch, ORDER_STREAM).permutation(n)
            out += [(epoch, order[i:i + self.batch]) for i in range(0, n, self.batch)]
            epoch += 1
        return out[:self.steps]

    def _batch_loss(self, x_adv: torch.Tensor, x: torch.Tensor, ids: torch.Tensor, epoch: int) -> torch.Tensor:
        """The mean loss of a minibatch (what the ascent maximises)."""
        if self.loss == "feature":
            view = full_view(torch.zeros(x.shape[0], self.model.num_patches, dtype=torch.bool, device=x.device))
            with torch.no_grad():
                clean = encoder_features(self.model, x, view)
            return feature_distance(encoder_features(self.model, x_adv, view), clean).mean()
        mask = self.model.make_mask(ids, seed=self.seed + MASK_SEED_OFFSET + epoch).to(x.device)
        tokens = None
        if getattr(self.model, "family", "") == "beit":
            with torch.no_grad():
                tokens = self.model.forward_mim(x, mask).pred.argmax(-1)
        return mim_attack_loss(self.model, x_adv, x, mask, tokens).mean()

    def craft(self, images: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """Craft the perturbation (C x H x W) on the first `images` of these training images; it is also kept as
        `self.delta` for the calls that follow."""
        n = min(self.images, len(images))
        if n < 1:
            raise ValueError("no training images to craft a universal perturbation on")
        device = next(self.model.parameters()).device
        schedule = self._schedule(n)
        step = {"k": 0}

        def evaluate(z: torch.Tensor, rows: torch.Tensor, need_grad: bool) -> Evaluation:
            epoch, positions = schedule[step["k"]]
            step["k"] += 1
            index = torch.as_tensor(positions, dtype=torch.long)
            x = images[index].to(device)
            ids = sample_ids[:n][index]
            with torch.enable_grad():
                d = z.detach().requires_grad_(True)
                loss = self._batch_loss((x + d).clamp(0, 1), x, ids, epoch)
                grad = torch.autograd.grad(loss, d)[0]
            return Evaluation(value=loss.detach().view(1), grad=grad)

        shape = tuple(images.shape[1:])
        with eval_mode(self.model), seeded(torch.zeros(1, device=device), self.seed):
            z0 = self._start(shape, device)
            delta, _ = projected_ascent(evaluate, torch.zeros_like(z0), z0, BallStep(self.eps, self.alpha, self.norm),
                                        steps=len(schedule), keep="last")
        self.delta = delta[0].detach()
        return self.delta

    # -- applying
    def forward(self, x: torch.Tensor, mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        if self.delta is None:
            raise RuntimeError("craft() the universal perturbation (or set .delta) before applying it")
        return (x + self.delta.to(device=x.device, dtype=x.dtype)).clamp(0, 1)
