"""`run_bench.py --submit` end to end on a freshly trained (2-step) model: it lands in every table, the HTML and
the plots; a resubmission replaces its rows; a NaN checkpoint is refused without a trace; two concurrent
submissions both land."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmark.leaderboard.entries import read_entries, read_entry

from .helpers import REPO

pytestmark = pytest.mark.slow
DS = "fashion_mnist"
_ENV = {"OMP_NUM_THREADS": "1", "MIMBENCH_OFFLINE": "1"}   # two processes share two cores in the concurrency test


def _argv(model: Path, name: str, out: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--name", name, "--submit", "--n-examples", "8", "--batch-size", "8",
            "--out", str(out), "--no-progress", *extra]


def _submit(model: Path, name: str, out: Path, *extra: str) -> subprocess.Popen:
    """A submission as a user runs it: its own process."""
    return subprocess.Popen([sys.executable, str(REPO / "run_bench.py"), *_argv(model, name, out, *extra)], cwd=REPO,
                            env=dict(os.environ, **_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def one_thread():
    """Torch on one thread in this process, as the subprocesses get (OMP_NUM_THREADS=1): on a machine shared with
    other jobs, two spinning OpenMP threads per process make these small runs many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def submit(model: Path, name: str, out: Path) -> subprocess.CompletedProcess:
    """The same submission in this process (`benchmark.cli.main`), which saves the imports of a new process."""
    from benchmark.cli import main
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), one_thread():
        rc = main(_argv(model, name, out))
    return subprocess.CompletedProcess([], rc, stdout.getvalue(), stderr.getvalue())


def variant(src: Path, dst: Path, edit) -> Path:
    """A copy of a trainer folder whose MIM weights `edit` changed, with the card's sha256 updated to match."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
    state = load_file(str(dst / "mim.safetensors"))
    edit(state)
    save_file(state, str(dst / "mim.safetensors"))
    card = json.loads((dst / "card.json").read_text())
    card["files"]["mim"]["sha256"] = hashlib.sha256((dst / "mim.safetensors").read_bytes()).hexdigest()
    (dst / "card.json").write_text(json.dumps(card))
    return dst


def _nudge(seed: int):
    def edit(state):
        g = torch.Generator().manual_seed(seed)
        for k, v in state.items():
            if v.is_floating_point():
                state[k] = (v.float() + 1e-3 * torch.randn(v.shape, generator=g)).to(v.dtype)
    return edit


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from zoo.train.__main__ import main
    out = tmp_path_factory.mktemp("trained") / "tiny"
    with one_thread():
        assert main(["--recipe", "mae_vit_t_fmnist", "--max-steps", "2", "--out", str(out), "--no-eval"]) == 0
    return out


@pytest.fixture(scope="module")
def board(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    proc = submit(trained, "tiny_a", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_submission_lands_in_every_table_the_html_and_the_plots(board, trained):
    out, proc = board
    folder = out / DS
    assert "added 'tiny_a' (partial, not ranked)" in proc.stdout
    rec, down = pd.read_csv(folder / "reconstruction.csv"), pd.read_csv(folder / "downstream.csv")
    for table, rows in ((rec, 1 + 3 * 3), (down, 1 + 4 * 3)):   # the standard suite: clean + its attacks x 3 eps
        mine = table[table.model == "tiny_a"]
        assert len(mine) == rows and (mine.n == 8).all() and set(mine.eps) == {0.0, 0.05, 0.1, 0.2}
        assert set(mine.suite) == {"standard"}
    for md in ("reconstruction.md", "downstream.md"):
        text = (folder / md).read_text()
        ranked, partial = text.split("Not ranked")
        assert "`tiny_a`" not in ranked and "`tiny_a`" in partial and "n=8 of the 1000" in partial
    entry = read_entry(folder / "entries" / "tiny_a.json")
    run = entry["runs"]["standard"]
    assert run["submitted"] and not run["complete"] and run["settings"]["eval_size"] == 1000
    assert run["subset"] == "the first 1000 sample ids of the 10000" and run["outcomes"]["n"] == 8
    assert run["validation"]["finite_weights"] and run["validation"]["classifier_min_input_grad_l1"] > 0
    card = json.loads((trained / "card.json").read_text())
    assert entry["checkpoints"]["mim"]["sha256"] == card["files"]["mim"]["sha256"]
    page = (folder / "index.html").read_text()
    assert "tiny_a" in page and 'src="plots/curves_standard.png"' in page and 'src="plots/grid_tiny_a.png"' in page
    assert 'href="fashion_mnist/index.html"' in (out / "index.html").read_text()
    for png in ("curves_standard.png", "grid_tiny_a.png"):
        assert (folder / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the curve of the model is in the figure (its legend), not just a file that exists
    from benchmark.leaderboard.boards import build_boards
    from benchmark.leaderboard.plots import curves_figure
    fig = curves_figure(build_boards(read_entries(out, DS), DS), "standard", DS)
    assert any("tiny_a" in t.get_text() for leg in fig.legends for t in leg.get_texts())


def test_resubmitting_replaces_rows_and_other_names_are_refused(board, trained):
    out, _ = board
    before = pd.read_csv(out / DS / "reconstruction.csv")
    proc = submit(trained, "tiny_a", out)
    assert proc.returncode == 0, proc.stderr
    assert "replaced the rows of 'tiny_a'" in proc.stdout
    for name in ("reconstruction.csv", "downstream.csv"):
        table = pd.read_csv(out / DS / name)
        assert not table.duplicated(["model", "suite", "attack", "norm", "eps"]).any()
    after = pd.read_csv(out / DS / "reconstruction.csv")
    assert len(after) == len(before)
    # the same checkpoint under another label would duplicate the model: refused, nothing changes
    state = snapshot(out)
    proc = submit(trained, "tiny_copy", out)
    assert proc.returncode == 2 and "already on the fashion_mnist board as 'tiny_a'" in proc.stderr
    assert snapshot(out) == state


def test_nan_checkpoint_is_refused_and_leaves_no_trace(board, trained, tmp_path):
    out, _ = board

    def poison(state):
        k = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)
        state[k] = state[k].clone()
        state[k].view(-1)[0] = float("nan")
    bad = variant(trained, tmp_path / "nan", poison)
    state = snapshot(out)
    proc = submit(bad, "tiny_nan", out)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "submission refused" in lines[0] and "non-finite" in lines[0]
    assert snapshot(out) == state
    fresh = tmp_path / "fresh_board"
    assert submit(bad, "tiny_nan", fresh).returncode == 2 and not fresh.exists()


def test_two_concurrent_submissions_both_land(board, trained, tmp_path):
    out, _ = board
    models = {f"tiny_{c}": variant(trained, tmp_path / c, _nudge(i)) for i, c in enumerate("bc", 1)}
    procs = {name: _submit(path, name, out, "--suite", "pgd") for name, path in models.items()}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, f"{name}: {stderr}"
    names = {e["model"] for e in read_entries(out, DS)}       # every entry still validates
    assert names == {"tiny_a", "tiny_b", "tiny_c"}
    for table, standard_rows in (("reconstruction.csv", 10), ("downstream.csv", 13)):
        frame = pd.read_csv(out / DS / table)
        assert set(frame.model) == names and len(frame) == standard_rows + 2 * 4   # tiny_a standard, b and c pgd
    page = (out / DS / "index.html").read_text()
    assert all(f'plots/grid_{n}.png' in page for n in names)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp*"))
