"""Nothing lost, nothing half-written: careless inputs against a copy of the committed board.

Each case runs the command line as a user would (in this process, to spare the imports of a new one) and checks
the exit code, that the error is one line, and that the board is byte-identical afterwards.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import REPO

SHIPPED = REPO / "zoo" / "weights"


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    from benchmark.cli import main
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(list(argv))
    return subprocess.CompletedProcess(list(argv), rc, stdout.getvalue(), stderr.getvalue())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def board(tmp_path) -> Path:
    """A copy of the committed board, which the careless commands below must leave byte-identical."""
    out = tmp_path / "board"
    shutil.copytree(REPO / "leaderboards", out)
    return out


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_a_run_of_another_checkpoint_never_replaces_an_entry(board, one_thread):
    """Defect: `--checkpoint OTHER` under the card's label replaced the complete pgd and threat runs with n=8."""
    other = SHIPPED / "mae_vit_t_fmnist_adversarial_advft" / "mim.safetensors"   # named as the card's own file
    before = snapshot(board)
    proc = run_cli("--checkpoint", str(other), "--suite", "fgsm", "--target", "reconstruction", "--n-examples", "8",
                   "--out", str(board), "--no-progress")
    line = one_line_error(proc)
    assert "another checkpoint" in line and "--replace" in line and "--name" in line
    assert snapshot(board) == before
    # the same file under a label of its own is welcome (and the card's sha256 does not refuse the user's file)
    proc = run_cli("--checkpoint", str(other), "--suite", "fgsm", "--target", "reconstruction", "--n-examples", "8",
                   "--batch-size", "8", "--out", str(board), "--no-progress", "--name", "my_mae")
    assert proc.returncode == 0, proc.stderr
    assert (board / "fashion_mnist" / "entries" / "my_mae.json").is_file()
    for name, data in before.items():
        if "entries/" in name:
            assert (board / name).read_bytes() == data, f"{name} changed"


def test_replace_is_what_lets_a_run_replace_another_checkpoint(tmp_path, one_thread):
    out = tmp_path / "own"
    common = ("--suite", "fgsm", "--target", "reconstruction", "--n-examples", "4", "--batch-size", "4",
              "--out", str(out), "--no-progress", "--name", "mine")
    assert run_cli(*common).returncode == 0
    other = str(SHIPPED / "mae_vit_t_fmnist_mimir_advft" / "mim.safetensors")
    one_line_error(run_cli(*common, "--checkpoint", other))
    proc = run_cli(*common, "--checkpoint", other, "--replace")
    assert proc.returncode == 0 and "its entry was replaced" in proc.stdout, proc.stderr


@pytest.mark.parametrize("name", ["../x", "a b", "x" * 300, "...", ""])
def test_bad_labels_are_refused_before_any_work(board, name):
    before = snapshot(board)
    line = one_line_error(run_cli("--name", name, "--n-examples", "4", "--out", str(board), "--no-progress"))
    assert "board label" in line
    assert snapshot(board) == before


def _small_run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("--suite", "fgsm", "--target", "reconstruction", "--n-examples", "4", "--batch-size", "4",
                   "--out", str(out), "--no-progress", *extra)


def test_resume_fresh_and_code_changes(tmp_path, monkeypatch, one_thread):
    """A rerun reuses the stored records; --fresh recomputes them; records of other code are never reused."""
    import benchmark.cli as cli
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path / "home"))
    first = _small_run(tmp_path / "a")
    assert first.returncode == 0 and "resuming" not in first.stderr
    again = _small_run(tmp_path / "b")
    assert "resuming: " in again.stderr
    fresh = _small_run(tmp_path / "c", "--fresh")
    assert fresh.returncode == 0 and "resuming" not in fresh.stderr
    monkeypatch.setattr(cli, "code_fingerprint", lambda: "0123456789abcdef")
    other_code = _small_run(tmp_path / "d")
    assert other_code.returncode == 0 and "resuming" not in other_code.stderr
    tables = {(tmp_path / d / "fashion_mnist" / "reconstruction.csv").read_text() for d in "abcd"}
    assert len(tables) == 1   # the same numbers every time


def _copy_default(tmp_path: Path, name: str = "copy") -> Path:
    folder = tmp_path / name
    shutil.copytree(SHIPPED / "mae_vit_t_fmnist", folder)
    return folder


def test_a_card_whose_hash_is_not_its_files_is_refused(tmp_path):
    import json
    folder = _copy_default(tmp_path)
    card = json.loads((folder / "card.json").read_text())
    card["files"]["mim"]["sha256"] = "0" * 64
    (folder / "card.json").write_text(json.dumps(card))
    line = one_line_error(_small_run(tmp_path / "out", "--model", str(folder)))
    assert "sha256" in line and "does not match the card's" in line
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_other_shapes_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file
    state = load_file(str(SHIPPED / "mae_vit_t_fmnist" / "mim.safetensors"))
    key = next(k for k, v in state.items() if v.dim() == 2)
    state[key] = state[key][:, :-1].contiguous()
    save_file(state, str(tmp_path / "cut.safetensors"))
    line = one_line_error(_small_run(tmp_path / "out", "--checkpoint", str(tmp_path / "cut.safetensors")))
    assert "shape mismatch" in line and key in line
    assert not (tmp_path / "out").exists()


def test_a_model_for_other_images_is_refused(tmp_path):
    """A trainer folder whose model takes 32 x 32 images, run on Fashion-MNIST's 28 x 28."""
    import hashlib
    import json

    import zoo
    from zoo.checkpoints import save_weights
    folder = _copy_default(tmp_path)
    card = json.loads((folder / "card.json").read_text())
    card["arch"]["img_size"] = card["classifier_arch"]["img_size"] = 32
    for role, family, arch in (("mim", "mae", card["arch"]), ("classifier", "vit_classifier", card["classifier_arch"])):
        save_weights(zoo.build(family, **arch), folder / f"{role}.safetensors")
        card["files"][role]["sha256"] = hashlib.sha256((folder / f"{role}.safetensors").read_bytes()).hexdigest()
    (folder / "card.json").write_text(json.dumps(card))
    line = one_line_error(_small_run(tmp_path / "out", "--model", str(folder)))
    assert "takes 1 x 32 x 32 images, fashion_mnist has 1 x 28 x 28" in line
