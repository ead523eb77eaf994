"""scripts/swap_staged.py: the re-fine-tuned classifiers replace the shipped ones all together or not at all, the
MIM weights' pretraining record survives in the card, and the board's entries of the old classifiers make way."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from .helpers import REPO

_spec = importlib.util.spec_from_file_location("swap_staged", REPO / "scripts" / "swap_staged.py")
swap_staged = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(swap_staged)


def _write(folder: Path, mim: bytes, cls: bytes, defenses: list[str], stages: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mim.safetensors").write_bytes(mim)
    (folder / "classifier.safetensors").write_bytes(cls)
    (folder / "log_finetune.csv").write_text(f"step,loss\n1,{len(cls)}\n")
    files = {r: {"file": f"{r}.safetensors", "sha256": hashlib.sha256(b).hexdigest()}
             for r, b in (("mim", mim), ("classifier", cls))}
    (folder / "card.json").write_text(json.dumps({"name": folder.name, "defenses": defenses, "files": files,
                                                  "training": {"stages": stages, "seconds": 1.0},
                                                  "metrics": {"test_accuracy": 0.5}}))


@pytest.fixture
def tree(tmp_path):
    weights, staging, board = tmp_path / "weights", tmp_path / "staging", tmp_path / "board"
    old = {"init_from": {"model": "base"}, "pretrain": {"steps": 468}, "finetune": {"steps": 1170}}
    new = {"mim_from": {"model": "x", "file": "/abs/mim.safetensors", "pretraining": "skipped"},
           "finetune": {"steps": 3510}}
    _write(weights / "base", b"m0", b"c0", [], {})
    for name in ("a", "b"):
        _write(weights / name, b"m" + name.encode(), b"old", ["adv"], old)
        _write(staging / name, b"m" + name.encode(), b"new" + name.encode(), ["adv"], new)
        (board / "fm" / "entries").mkdir(parents=True, exist_ok=True)
        (board / "fm" / "examples").mkdir(parents=True, exist_ok=True)
        (board / "fm" / "entries" / f"{name}.json").write_text("old")
        (board / "fm" / "examples" / f"{name}.universal.safetensors").write_text("old")
    (board / "fm" / "entries" / "base.json").write_text("base")
    (staging / "board" / "fm" / "entries").mkdir(parents=True)
    (staging / "board" / "fm" / "entries" / "a.json").write_text("new")
    return weights, staging, board


def test_the_swap_replaces_every_defended_classifier_and_keeps_the_pretraining_record(tree):
    weights, staging, board = tree
    assert swap_staged.main(["--weights", str(weights), "--staging", str(staging), "--board", str(board)]) == 0
    for name in ("a", "b"):
        assert (weights / name / "classifier.safetensors").read_bytes() == b"new" + name.encode()
        card = json.loads((weights / name / "card.json").read_text())
        assert list(card["training"]["stages"]) == ["init_from", "pretrain", "mim_from", "finetune"]
        assert card["training"]["stages"]["pretrain"] == {"steps": 468}
        assert card["training"]["stages"]["mim_from"]["file"] == f"zoo/weights/{name}/mim.safetensors"
        assert not (board / "fm" / "examples" / f"{name}.universal.safetensors").exists()
    assert (board / "fm" / "entries" / "a.json").read_text() == "new"      # the staged board's entry moved in
    assert not (board / "fm" / "entries" / "b.json").exists()             # the old classifier's entry is gone
    assert (board / "fm" / "entries" / "base.json").read_text() == "base"  # the baseline is untouched
    assert (weights / "base" / "classifier.safetensors").read_bytes() == b"c0"


@pytest.mark.parametrize("break_it", ["unstaged", "other_mim", "bad_sha"])
def test_an_unready_staging_area_is_refused_in_one_line_and_nothing_changes(tree, break_it, capsys):
    weights, staging, board = tree
    if break_it == "unstaged":
        (staging / "b" / "card.json").unlink()
    elif break_it == "other_mim":
        _write(staging / "b", b"retrained", b"newb", ["adv"], {"finetune": {}})
    else:
        (staging / "b" / "classifier.safetensors").write_bytes(b"tampered")
    before = {p: p.read_bytes() for p in sorted(weights.rglob("*")) + sorted(board.rglob("*")) if p.is_file()}
    assert swap_staged.main(["--weights", str(weights), "--staging", str(staging), "--board", str(board)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert {p: p.read_bytes() for p in before} == before


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(tree, capsys):
    weights, staging, board = tree
    before = {p: p.read_bytes() for p in sorted(weights.rglob("*")) + sorted(board.rglob("*")) if p.is_file()}
    assert swap_staged.main(["--weights", str(weights), "--staging", str(staging), "--board", str(board),
                             "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "a: classifier" in out and "remove" in out and "move" in out
    assert {p: p.read_bytes() for p in before} == before
