"""docs/THREATS.md's "Measured cost" table is typed by hand from the committed entries' `runs.<suite>.seconds`: every
figure in it must be a recorded time of that suite, and every recorded time must fall in one of the suite's rows,
so a re-run or a new entry fails here until the table is updated."""
from __future__ import annotations

import re

from benchmark.leaderboard.entries import read_entries

from .helpers import REPO

SUITES = ("universal", "corruptions", "transfer")
BASELINE = "mae_vit_t_fmnist"


def _cost_rows() -> list[tuple[str, str, int, int]]:
    """(suite, models, low, high) for each row of the 'Measured cost' table; a single figure is its own range."""
    text = (REPO / "docs" / "THREATS.md").read_text()
    section = text.split("## Measured cost", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] not in SUITES:
            continue
        figures = re.fullmatch(r"(\d+)(?:-(\d+))?", cells[3])
        assert figures, f"row {cells[:2]}: seconds column {cells[3]!r} is neither a number nor a range"
        low = int(figures.group(1))
        rows.append((cells[0], cells[1], low, int(figures.group(2) or low)))
    return rows


def _recorded_seconds() -> dict[str, dict[str, int]]:
    """suite -> model -> whole seconds of its complete run, from the committed entries."""
    recorded: dict[str, dict[str, int]] = {suite: {} for suite in SUITES}
    for entry in read_entries(REPO / "leaderboards", "fashion_mnist"):
        for suite in SUITES:
            run = entry.get("runs", {}).get(suite, {})
            if run.get("complete") and run.get("seconds") is not None:
                recorded[suite][entry["model"]] = round(run["seconds"])
    return recorded


def test_measured_cost_table_matches_the_entries():
    rows, recorded = _cost_rows(), _recorded_seconds()
    assert {suite for suite, *_ in rows} == set(SUITES), f"the table lacks a suite: {rows}"
    for suite, models, low, high in rows:
        times = set(recorded[suite].values())
        assert low <= high, f"{suite} / {models}: range {low}-{high} runs backwards"
        assert {low, high} <= times, f"{suite} / {models}: {low}-{high} are not recorded times {sorted(times)}"
    for suite, by_model in recorded.items():
        for model, seconds in by_model.items():
            covering = [models for s, models, low, high in rows if s == suite and low <= seconds <= high]
            assert covering, f"{model} {suite} took {seconds} s, which no row of the table covers"
            if model == BASELINE:
                assert "baseline" in covering, f"the baseline's {suite} time {seconds} s is not in its own row"
