"""Runs recorded under an earlier definition of their suite: what changed since, cell by cell.

A suite's cells (attack settings, budgets) can change between mimbench versions, as the `standard` suite's APGD-T
did (3 targets, then AutoAttack's 9). A run of the old definition stays readable and ranked, but the board marks
it and `python -m benchmark.report --missing` lists it, so no number passes for a run of the current suite.
"""
from __future__ import annotations

import json
from typing import Any

from ..suites import SUITES, Cell, row_label

_IDENTITY = ("target", "attack", "norm", "eps", "source")


def _normalised(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as JSON holds it (tuples as lists), with the fields a run recorded before they existed defaulted."""
    defaults = Cell("", "", "", 0.0).to_dict()
    return json.loads(json.dumps({**defaults, **cell}))


def _name(cell: dict[str, Any]) -> str:
    return f"{cell['target']} {row_label(cell['attack'], cell['norm'], cell['eps'])}"


def suite_changes(run: dict[str, Any], dataset: str, target: str = "") -> list[str]:
    """How `run`'s cells (of `target`, or all) differ from its suite's current definition on `dataset`, one line per
    change (grouped over budgets); [] when they agree or the suite is not registered here (a user's own suite)."""
    if run.get("suite") not in SUITES or not run.get("cells"):   # no cells recorded: nothing to compare
        return []
    suite = SUITES.get(run["suite"])
    try:
        current = suite.cells(dataset, run.get("settings", {}).get("target", "both"))
    except KeyError:
        return []
    ident = lambda c: tuple(c[k] for k in _IDENTITY)  # noqa: E731
    now = {ident(c): c for c in (_normalised(c.to_dict()) for c in current) if c["target"] == (target or c["target"])}
    then = {ident(c): c for c in (_normalised(c) for c in run["cells"]) if c["target"] == (target or c["target"])}
    changes: list[str] = []
    for key, cell in then.items():
        if key not in now:
            changes.append(f"{_name(cell)} is no longer in the suite")
            continue
        new = now[key]
        fields = sorted(set(cell) | set(new))
        diffs = []
        for f in fields:
            if f == "params":
                for p in sorted(set(cell["params"]) | set(new["params"])):
                    old_v, new_v = cell["params"].get(p, "unset"), new["params"].get(p, "unset")
                    if old_v != new_v:
                        diffs.append(f"{p} {old_v} -> {new_v}")
            elif cell.get(f) != new.get(f):
                diffs.append(f"{f} {cell.get(f)} -> {new.get(f)}")
        if diffs:
            changes.append(f"{cell['target']} {cell['attack']}: {', '.join(diffs)}")
    changes += [f"{_name(c)} is new in the suite" for key, c in now.items() if key not in then]
    return list(dict.fromkeys(changes))     # one line for a change repeated at every budget
