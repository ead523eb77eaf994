"""The README's "Defended variants" table: every defense explained in a row whose training command names a
registered recipe with that defense, and whose "shipped" column matches what is in zoo/weights/; and the
hand-written corruptions and transfer findings, whose figures must be those of the committed boards and entries."""
from __future__ import annotations

import re

from benchmark.leaderboard.boards import build_boards
from benchmark.leaderboard.entries import read_entries
from zoo.train import get_recipe, list_recipes
from zoo.train.defenses import ALL_DEFENSES

from .helpers import REPO


def _defense_rows() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Defended variants", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def test_every_defense_has_a_row_with_a_working_command():
    rows = _defense_rows()
    assert rows, "no defense table under '## Defended variants'"
    explained: set[str] = set()
    for defense_col, what, command, shipped in rows:
        names = re.findall(r"`([a-z_]+)`", defense_col)
        recipe = re.fullmatch(r"`python -m zoo\.train --recipe (\S+)`", command)
        assert recipe, f"row {names}: no training command, got {command!r}"
        assert recipe.group(1) in list_recipes(), f"row {names}: unknown recipe {recipe.group(1)}"
        assert what, f"row {names}: no explanation"
        for name in names:
            assert name in get_recipe(recipe.group(1)).defenses, f"{recipe.group(1)} does not use {name}"
        explained.update(names)
    assert explained == set(ALL_DEFENSES), f"defenses without a row: {sorted(set(ALL_DEFENSES) - explained)}"


def test_shipped_column_matches_zoo_weights():
    for _, _, command, shipped in _defense_rows():
        recipe = command.split("--recipe ")[1].rstrip("`")
        present = (REPO / "zoo" / "weights" / recipe / "card.json").is_file()
        assert shipped.startswith("yes") == present, f"{recipe}: README says {shipped!r}, weights present: {present}"


_LEVEL = re.compile(r"(\d{2,}\.\d+)(?:-(\d{2,}\.\d+))?(?= ?%| ?dB| vs)")


def _findings_paragraph(suite: str = "corruptions") -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"What the Fashion-MNIST zoo shows under {suite}")
    return text[start:text.index("\n\n", start)]


def _quoted_levels(paragraph: str) -> set[str]:
    """Levels a paragraph names: numbers of two or more integer digits with % or dB, alone or as a range's end."""
    return {v for pair in _LEVEL.findall(paragraph) for v in pair if v}


def _corruption_board_levels() -> set[str]:
    """The Clean and Mean figures of the committed corruptions boards, as the boards print them."""
    boards = build_boards(read_entries(REPO / "leaderboards", "fashion_mnist"), "fashion_mnist")
    return {b.fmt_value(v, interval=False) for b in boards if b.suite == "corruptions"
            for r in b.ranked for v in (r.clean, r.score)}


def test_corruption_findings_quote_the_boards():
    """The hand-written corruptions findings quote accuracies and PSNRs: each level they name (a number of two
    or more integer digits with % or dB, alone or as either end of a range) must be a Clean or Mean figure of the
    generated corruptions boards, so a re-run that moves the board fails here until the prose is updated.
    Differences (one integer digit) are not checked."""
    levels = _corruption_board_levels()
    assert len(levels) >= 20, f"corruptions boards not found: {sorted(levels)}"
    quoted = _quoted_levels(_findings_paragraph())
    assert len(quoted) >= 15, f"too few quoted levels found: {sorted(quoted)}"
    assert not quoted - levels, f"README corruptions findings quote numbers not on the boards: {sorted(quoted - levels)}"


def test_transfer_findings_quote_the_entries():
    """The hand-written transfer findings quote per-attack accuracies (in %, one decimal) and masked PSNRs (in dB,
    two decimals) of the committed transfer runs, and say how many models have one: a re-run or a new entry that
    changes either fails here until the prose is updated. Differences (one integer digit) are not checked."""
    entries = read_entries(REPO / "leaderboards", "fashion_mnist")
    runs = [e["runs"]["transfer"] for e in entries if e.get("runs", {}).get("transfer", {}).get("complete")]
    levels = {f"{100 * r['accuracy']:.1f}" for run in runs for r in run["downstream"]}
    levels |= {f"{r['psnr']:.2f}" for run in runs for r in run["reconstruction"] if r["psnr"] is not None}
    paragraph = _findings_paragraph("transfer")
    quoted = _quoted_levels(paragraph)
    assert len(quoted) >= 15, f"too few quoted levels found: {sorted(quoted)}"
    assert not quoted - levels, f"README transfer findings quote numbers not in the entries: {sorted(quoted - levels)}"
    count = re.search(r"(\d+) of (\d+) models", paragraph) or re.search(r"all (\d+)() models", paragraph)
    assert count, "the transfer findings do not say how many models they cover ('N of M models', 'all N models')"
    covered, of = int(count.group(1)), int(count.group(2) or count.group(1))
    assert (covered, of) == (len(runs), len(entries)), (
        f"README says {count.group(0)!r}, the entries hold {len(runs)} transfer runs of {len(entries)} models")
