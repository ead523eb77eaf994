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
