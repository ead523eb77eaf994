"""Base of the downstream attacks: one suite cell -> adversarial images for a classifier, seeded, within budget.

Each attack (one per file) wraps a library attack (torchattacks, AutoAttack) or, for the adaptive attacks that
no library has, a hand-written one. `run` draws every random number from torch's RNG seeded by the run's seed
and the batch's sample ids (batches are fixed by sample id), inside `fork_rng`, so results are reproducible and
the caller's RNG stream is untouched. `within_budget` maps the raw result into the cell's threat model (CW is a
minimum-norm attack: a perturbation larger than the budget is not a success, so that sample keeps its clean
image). The runner checks every batch `within_budget` returns.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Iterator

import torch
import torch.nn as nn

from .._geometry import ascent_direction, clip_to_image, project, random_start
from ..checks import perturbation_norm


def batch_seed(seed: int, sample_ids: torch.Tensor) -> int:
    """A seed fixed by the run's seed and the batch's sample ids (batches are fixed by sample id)."""
    ids = sample_ids.tolist()
    return (seed * 1_000_003 + (ids[0] if ids else 0) * 7919 + len(ids)) % (2 ** 63 - 1)


@contextlib.contextmanager
def seeded(x: torch.Tensor, seed: int) -> Iterator[None]:
    """torch's RNG seeded with `seed` inside, the caller's RNG state restored afterwards."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def run_seeded(attack, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
    """Run any `attack(x, y)` (e.g. a torchattacks attack) with torch's RNG seeded from the batch."""
    with seeded(x, batch_seed(seed, sample_ids)):
        return attack(x, y)


class DownstreamAttack:
    """An untargeted attack on a classifier (labels = ground truth), built from a suite cell."""

    name = "downstream_attack"
    eps_independent = False  # True: the raw adversarial images do not depend on the cell's eps (CW)
    float_logits = False     # True: the model is wrapped in FloatLogits (attack libraries that need float32 logits)

    def __init__(self, model: nn.Module, cell, early_stop: bool = True, start: str = "per_sample") -> None:
        """`early_stop`: iterative attacks stop on samples already broken (see engine.py); `start`: random
        starts drawn per sample id ('per_sample') or from torch's RNG as torchattacks does ('torch')."""
        self.model = FloatLogits(model) if self.float_logits else model
        self.cell, self.early_stop, self.start = cell, early_stop, start

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cell.norm}, eps={self.cell.eps:g}, steps={self.cell.steps})"

    def memo_key(self) -> str:
        """What identifies the raw result across the cells of a run (only used when eps_independent)."""
        return replace(self.cell, eps=0.0, attack="").key()

    def run(self, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
        """Raw adversarial images, with every random number drawn from the batch's seed."""
        with seeded(x, batch_seed(seed, sample_ids)):
            return self._attack(x, y, sample_ids, seed).detach()

    def within_budget(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x_adv

    def perturb(self, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
        """`run` then `within_budget`: the images the cell's threat model allows."""
        return self.within_budget(self.run(x, y, sample_ids, seed), x)

    def _attack(self, x: torch.Tensor, y: torch.Tensor, sample_ids: torch.Tensor, seed: int) -> torch.Tensor:
        """The attack proper; `seed` is the run's seed (torch's RNG is already seeded from the batch)."""
        raise NotImplementedError


class FloatLogits(nn.Module):
    """A classifier whose logits are float32 whatever the autocast: attack libraries mix the logits with float32
    tensors of their own (torchattacks.Square's index_put fails on bf16 logits under `--amp bf16`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float()


class TorchattacksAttack(DownstreamAttack):
    """A torchattacks attack built from the cell (subclasses say which, with which arguments)."""

    float_logits = True

    def build(self):
        raise NotImplementedError

    def _attack(self, x, y, sample_ids, seed):
        return self.build()(x, y)


def keep_within_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Samples whose perturbation exceeds the L2 budget keep their clean image (the attack failed there)."""
    over = perturbation_norm(x_adv - x, "L2") > eps
    if bool(over.any()):
        x_adv = x_adv.clone()
        x_adv[over] = x[over]
    return x_adv


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled pre-logit features and logits in one pass (zoo classifiers: `features(x)`, then `head`)."""
    feats = model.features(x)
    return feats, model.head(feats)


class HandwrittenPGD(DownstreamAttack):
    """Projected ascent on a custom objective, for the attacks no library has (the adaptive ones).

    Random start per sample id (the run's seed), `cell.steps` steps of `cell.alpha`; a sample is frozen at
    the first iterate that misclassifies it (that iterate is returned), the others return their last iterate.
    Subclasses give `_context` (computed once on the clean batch) and `_objective` (logits, scalar to ascend).
    """

    def _context(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        return {}

    def _objective(self, x_adv: torch.Tensor, y: torch.Tensor, ctx: dict) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _attack(self, x, y, sample_ids, seed):
        c = self.cell
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                ctx = self._context(x, y)
            delta = clip_to_image(x, random_start(x, c.eps, c.norm, sample_ids, seed))
            result = (x + delta).clone()
            done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            for step in range(c.steps + 1):
                last = step == c.steps
                with torch.enable_grad() if not last else torch.no_grad():
                    d = delta.detach().requires_grad_(not last)
                    logits, scalar = self._objective(x + d, y, ctx)
                    broken = (logits.argmax(1) != y) & ~done
                    result[broken] = (x + delta)[broken]
                    done |= broken
                    if last or bool(done.all()):
                        break
                    grad = torch.autograd.grad(scalar, d)[0]
                grad[done] = 0
                delta = project(delta + c.alpha * ascent_direction(grad, c.norm), c.eps, c.norm)
                delta = clip_to_image(x, delta)
            result[~done] = (x + delta)[~done]
            return result
        finally:
            self.model.train(was_training)
