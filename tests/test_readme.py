"""The README's "Defended variants" table: every defense explained in a row whose training command names a
registered recipe with that defense, and whose "shipped" column matches what is in zoo/weights/."""
from __future__ import annotations

import re
from pathlib import Path

from zoo.train import get_recipe, list_recipes
from zoo.train.defenses import ALL_DEFENSES

REPO = Path(__file__).resolve().parents[1]


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
