"""docs/DEFENDED_ZOO.md's table of shipped variants is copied by hand from the board: its PGD-20 column must be the
committed `pgd` entry's accuracy at Linf 0.1 (or say "not yet on the board" when there is none), so it cannot go
stale when entries are re-run."""
from __future__ import annotations

import pandas as pd

from .helpers import REPO


def _shipped_rows() -> list[list[str]]:
    text = (REPO / "docs" / "DEFENDED_ZOO.md").read_text()
    section = text.split("## Shipped variants (measured)", 1)[1].split("\n\n| variant", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def test_pgd20_column_matches_committed_board():
    board = pd.read_csv(REPO / "leaderboards" / "fashion_mnist" / "downstream.csv")
    pgd = board[(board.suite == "pgd") & (board.attack == "pgd") & (board.eps == 0.1) & (board.n == 10000)]
    rows = _shipped_rows()
    assert len(rows) == 10, f"expected the ten defended variants, found {len(rows)} rows"
    for variant, _, _, pgd20, *_ in rows:
        model = variant.strip("`")
        measured = pgd.loc[pgd.model == model, "accuracy"]
        if measured.empty:
            assert pgd20 == "not yet on the board", f"{model}: doc says {pgd20}, the board has no pgd entry"
        else:
            assert pgd20 == f"{measured.iloc[0]:.4f}", f"{model}: doc says {pgd20}, board {measured.iloc[0]:.4f}"
