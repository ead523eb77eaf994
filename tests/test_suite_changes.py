"""Runs of an earlier definition of their suite: detected cell by cell, marked † on the boards, listed by
`python -m benchmark.report --missing` for a re-run, and never mistaken for a run of the current suite."""
from __future__ import annotations

import copy
import json
import shutil

from benchmark import report
from benchmark.leaderboard.boards import build_boards
from benchmark.leaderboard.entries import read_entries
from benchmark.leaderboard.markdown import board_markdown
from benchmark.leaderboard.suite_changes import suite_changes
from benchmark.suites import get_suite

from .helpers import REPO

BOARD = REPO / "leaderboards"
DATASET = "fashion_mnist"


def _current_cells(suite: str) -> list[dict]:
    return json.loads(json.dumps([c.to_dict() for c in get_suite(suite).cells(DATASET)]))


def _standard_run() -> dict:
    entry = next(e for e in read_entries(BOARD, DATASET) if "standard" in e["runs"])
    return copy.deepcopy(entry["runs"]["standard"])


def test_a_run_of_the_current_definition_has_no_changes():
    run = _standard_run()
    run["cells"] = _current_cells("standard")
    assert suite_changes(run, DATASET) == []
    # every committed run of a suite other than `standard` was made by the current definition
    for e in read_entries(BOARD, DATASET):
        for suite, r in e["runs"].items():
            if suite != "standard":
                assert suite_changes(r, DATASET) == [], (e["model"], suite)


def test_a_changed_parameter_is_named_once_and_only_for_its_target():
    run = _standard_run()
    run["cells"] = _current_cells("standard")
    for c in run["cells"]:
        if c["attack"] == "apgd_t":
            c["params"]["n_targets"] = 2
    assert suite_changes(run, DATASET) == ["downstream apgd_t: n_targets 2 -> 9"]   # once, not per budget
    assert suite_changes(run, DATASET, "downstream") == ["downstream apgd_t: n_targets 2 -> 9"]
    assert suite_changes(run, DATASET, "reconstruction") == []


def test_added_and_removed_cells_are_named():
    run = _standard_run()
    run["cells"] = [c for c in _current_cells("standard") if not (c["attack"] == "square" and c["eps"] == 0.2)]
    run["cells"].append({**run["cells"][0], "attack": "fgsm", "method": "fgsm"})
    changes = suite_changes(run, DATASET)
    assert "downstream square|Linf|0.2 is new in the suite" in changes
    assert "downstream fgsm|Linf|0.05 is no longer in the suite" in changes
    assert suite_changes({**run, "suite": "my_own_suite"}, DATASET) == []   # a user's suite: nothing to compare


def test_boards_mark_outdated_runs_and_missing_lists_them(tmp_path, capsys):
    out = shutil.copytree(BOARD, tmp_path / "lb")
    folder = out / DATASET / "entries"
    paths = sorted(folder.glob("*.json"))
    current, outdated = paths[0], paths[1]
    for path, n_targets in ((current, None), (outdated, 2)):
        entry = json.loads(path.read_text())
        entry["runs"]["standard"]["cells"] = _current_cells("standard")
        if n_targets is not None:
            for c in entry["runs"]["standard"]["cells"]:
                if c["attack"] == "apgd_t":
                    c["params"]["n_targets"] = n_targets
        path.write_text(json.dumps(entry))
    names = [json.loads(p.read_text())["model"] for p in (current, outdated)]
    boards = build_boards(read_entries(out, DATASET), DATASET)
    rows = {(b.target, r.model): r for b in boards if b.suite == "standard" for r in b.ranked}
    assert rows[("downstream", names[1])].marks.endswith("†")
    assert "†" not in rows[("downstream", names[0])].marks
    assert "†" not in rows[("reconstruction", names[1])].marks      # its reconstruction cells did not change
    page = board_markdown("downstream", boards, {})
    assert f"- `{names[1]}`, `standard`: downstream apgd_t: n_targets 2 -> 9" in page
    assert "n_targets 2 -> 9" not in board_markdown("reconstruction", boards, {})
    assert report.main(["--out", str(out), "--missing", "standard"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert names[1] in listed and names[0] not in listed


def test_missing_lists_an_entry_of_other_weights_than_the_shipped_ones(tmp_path, capsys):
    """A shipped model retrained since its entry was made: every suite of that entry is listed for a re-run."""
    out = shutil.copytree(BOARD, tmp_path / "lb")
    path = sorted((out / DATASET / "entries").glob("*.json"))[0]
    entry = json.loads(path.read_text())
    assert report.main(["--out", str(out), "--missing", "pgd"]) == 0
    assert entry["model"] not in capsys.readouterr().out.split()
    entry["checkpoints"]["mim"]["sha256"] = "0" * 64
    path.write_text(json.dumps(entry))
    assert report.main(["--out", str(out), "--missing", "pgd"]) == 0
    assert f"{entry['model']} pgd" in capsys.readouterr().out.splitlines()
