"""The base of every attack, downstream and reconstruction: one constructor shape, one call signature.

    attack = PGD(model, eps, norm="Linf", steps=20, seed=0)        # its own keywords; an unknown one: TypeError
    attack = PGD.from_cell(model, cell, seed=0)                     # as a suite cell describes it
    x_adv = attack(x, labels, sample_ids)                           # downstream: labels
    x_adv = attack(x, mask, sample_ids)                             # reconstruction: the evaluation mask

Like torchattacks' `Attack`, the base owns what every attack must get right: the model runs in eval mode
during the attack (and gets its mode back), images come in and go out in [0, 1] and detached, and every
random number is drawn from torch's RNG seeded by the run's seed and the batch's sample ids (batches are fixed
by sample id), inside `fork_rng`, so results are reproducible and the caller's RNG stream is untouched.
"""
from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Iterator

import torch
import torch.nn as nn

NORMS = ("Linf", "L2")

__all__ = ["NORMS", "Attack", "batch_seed", "eval_mode", "seeded"]


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


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Attack a model in eval mode (no dropout / drop-path), restoring its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class Attack:
    """An attack on one model at one budget (`eps` in the `norm` ball, [0, 1] pixel units)."""

    name: ClassVar[str] = "attack"
    target: ClassVar[str] = ""                    # 'downstream' | 'reconstruction'
    cell_fields: ClassVar[tuple[str, ...]] = ()   # the suite cell's fields this attack takes (besides eps, norm)

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "Linf", seed: int = 0) -> None:
        if norm not in NORMS:
            raise ValueError(f"unknown norm '{norm}' (Linf or L2)")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.model, self.eps, self.norm, self.seed = model, float(eps), norm, int(seed)

    @classmethod
    def cell_settings(cls, cell) -> dict[str, Any]:
        """This attack's keywords as a suite cell gives them: eps, norm, the fields it declares, its params."""
        settings: dict[str, Any] = {"eps": cell.eps, "norm": cell.norm}
        settings.update({f: getattr(cell, f) for f in cls.cell_fields})
        settings.update(dict(cell.params))
        return settings

    @classmethod
    def from_cell(cls, model: nn.Module, cell, seed: int = 0, **options: Any) -> "Attack":
        """The attack a suite cell describes (`options`: this attack's run options, e.g. early_stop)."""
        settings = cls.cell_settings(cell)
        eps = settings.pop("eps")
        return cls(model, eps, seed=seed, **settings, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.norm}, eps={self.eps:g})"

    def __call__(self, x: torch.Tensor, labels_or_mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """Adversarial images for clean images `x` in [0, 1]: `labels_or_mask` is the labels (downstream) or the
        evaluation mask (reconstruction); `sample_ids` seed every random number."""
        x = x.detach()
        with eval_mode(self.model), seeded(x, batch_seed(self.seed, sample_ids)):
            return self.forward(x, labels_or_mask, sample_ids).detach()

    def forward(self, x: torch.Tensor, labels_or_mask: torch.Tensor, sample_ids: torch.Tensor) -> torch.Tensor:
        """The attack proper (the model is in eval mode and torch's RNG is seeded from the batch)."""
        raise NotImplementedError
