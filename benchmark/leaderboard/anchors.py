"""The published defenses a dataset's zoo is measured against, and the zoo's best variant beside them.

The anchors are figures from the literature at the same budget and attack as the `pgd` suite's reference cell
(PGD-20, Linf 0.1 on Fashion-MNIST, the whole test set); the target is what the defended zoo aims for (issue 16:
clean and PGD-20 accuracy, and how far the ranked `standard` worst case may fall below PGD-20 on the same ids).
The best variant is read from the boards, so the README's comparison never goes stale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..suites import RANKED_SUITE
from .boards import Board, BoardRow, Value

__all__ = ["ANCHORS", "TARGETS", "Anchor", "AnchorComparison", "Target", "anchor_comparison", "pgd20"]

ANCHOR_SUITE = "pgd"     # the suite whose reference cell (PGD-20 on the whole test set) the anchors were measured with
ANCHOR_ATTACK = "pgd"    # its PGD-20 rows (20 steps of 2.5 * eps / 20 from a random start, as the anchors')


@dataclass(frozen=True)
class Anchor:
    """A published defense: clean and PGD-20 accuracy at the dataset's reference budget."""

    name: str
    source: str
    clean: float
    robust: float


@dataclass(frozen=True)
class Target:
    """What the best variant of the zoo should reach: clean and PGD-20 accuracy, and the largest drop from PGD-20
    to the ranked worst case on the same samples."""

    clean: float
    robust: float
    ranked_drop: float


ANCHORS: dict[str, list[Anchor]] = {
    "fashion_mnist": [
        Anchor("TRADES, wide CNN", "Song et al., CCS 2019", 0.909, 0.724),
        Anchor("PGD-AT, CNN", "Song et al., CCS 2019", 0.909, 0.681),
    ],
}
ANCHOR_BUDGETS: dict[str, tuple[str, float]] = {"fashion_mnist": ("Linf", 0.1)}   # where the anchors were measured
TARGETS: dict[str, Target] = {"fashion_mnist": Target(clean=0.88, robust=0.70, ranked_drop=0.08)}


@dataclass
class AnchorComparison:
    """The best variant of the `pgd` board (highest PGD-20 at the reference budget) with its `standard` row."""

    best: BoardRow
    pgd_board: Board
    ranked: Optional[BoardRow]             # the same model's complete run on the ranked suite's downstream board
    ranked_board: Optional[Board]
    anchors: list[Anchor]
    target: Optional[Target]

    @property
    def best_pgd(self) -> Value:
        """The best variant's PGD-20 accuracy at the reference budget, whole test set."""
        return pgd20(self.pgd_board, self.best)

    @property
    def ranked_drop(self) -> Optional[float]:
        """The ranked worst case minus PGD-20 alone on the ranked suite's samples (negative: the cascade found more)."""
        if self.ranked is None or self.ranked_board is None or self.ranked.score.value is None:
            return None
        alone = pgd20(self.ranked_board, self.ranked).value
        return None if alone is None else self.ranked.score.value - alone


def pgd20(board: Board, row: BoardRow) -> Value:
    """A row's PGD-20 accuracy alone at its board's reference budget (empty Value if the board has no such row)."""
    if board.reference not in board.budgets or ANCHOR_ATTACK not in row.details:
        return Value()
    return row.details[ANCHOR_ATTACK][board.budgets.index(board.reference)]


def anchor_comparison(boards: list[Board], dataset: str) -> Optional[AnchorComparison]:
    """The comparison for `dataset`, or None when it has no anchors or no complete downstream `pgd` run."""
    anchors = ANCHORS.get(dataset)
    pgd = next((b for b in boards if b.target == "downstream" and b.suite == ANCHOR_SUITE), None)
    if not anchors or pgd is None or pgd.reference is None:
        return None
    norm, eps = ANCHOR_BUDGETS[dataset]
    if pgd.reference[0] != norm or not math.isclose(pgd.reference[1], eps):   # not the anchors' budget: no comparison
        return None
    rows = [r for r in pgd.ranked if pgd20(pgd, r).value is not None]
    if not rows:
        return None
    best = max(rows, key=lambda r: (pgd20(pgd, r).value, r.model))
    ranked_board = next((b for b in boards if b.target == "downstream" and b.suite == RANKED_SUITE), None)
    ranked = None
    if ranked_board is not None:
        ranked = next((r for r in ranked_board.ranked if r.model == best.model), None)
    return AnchorComparison(best, pgd, ranked, ranked_board, anchors, TARGETS.get(dataset))
