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
    """Every file of a board but its lock file (which a writer creates empty the first time it takes the lock)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".board.lock"}


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


# -- every bad input of issue 13, in one table: the command, what the one-line error says ------------------------

def _files(tmp: Path) -> dict[str, Path]:
    """The careless inputs, made once per test in `tmp`."""
    import gzip
    import json
    import pickle

    import numpy as np
    import torch
    made: dict[str, Path] = {}
    (tmp / "empty.pth").write_bytes(b"")
    made["empty"] = tmp / "empty.pth"
    made["st_named_pth"] = tmp / "mim.pth"
    shutil.copy(SHIPPED / "mae_vit_t_fmnist" / "mim.safetensors", made["st_named_pth"])
    data = (SHIPPED / "mae_vit_t_fmnist" / "mim.safetensors").read_bytes()
    made["half"] = tmp / "half.safetensors"
    made["half"].write_bytes(data[: len(data) // 2])

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))
    made["evil"] = tmp / "evil.pth"
    with open(made["evil"], "wb") as f:
        pickle.dump({"model": Evil()}, f, protocol=2)
    from safetensors.torch import load_file, save_file
    for role in ("classifier", "mim"):
        made[f"nan_{role}"] = tmp / f"nan_{role}.safetensors"
        state = load_file(str(SHIPPED / "mae_vit_t_fmnist" / f"{role}.safetensors"))
        key = next(k for k, v in state.items() if v.dim() == 2)
        state[key] = state[key].clone()
        state[key].view(-1)[0] = float("nan")
        save_file(state, str(made[f"nan_{role}"]))
    for name, text in (("badcard", "{not json"), ("misscard", None)):
        folder = tmp / name
        shutil.copytree(SHIPPED / "mae_vit_t_fmnist", folder)
        if text is None:
            card = json.loads((folder / "card.json").read_text())
            del card["dataset"]
            text = json.dumps(card)
        (folder / "card.json").write_text(text)
        made[name] = folder
    src = Path("/usr/share/datasets/fashion-mnist")
    if not src.is_dir():
        from zoo.data import load_dataset
        src = Path(load_dataset("fashion_mnist", "test").source)
    for name in ("corrupt_gz", "bad_labels", "swapped", "wrong_dir"):
        (tmp / name).mkdir()
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp / "corrupt_gz" / f).write_bytes((src / f).read_bytes()[:300])
    labels = bytearray(gzip.decompress((src / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8 + 5] = 42
    (tmp / "bad_labels" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    shutil.copy(src / "t10k-images-idx3-ubyte.gz", tmp / "bad_labels")
    shutil.copy(src / "t10k-images-idx3-ubyte.gz", tmp / "swapped" / "t10k-labels-idx1-ubyte.gz")
    shutil.copy(src / "t10k-labels-idx1-ubyte.gz", tmp / "swapped" / "t10k-images-idx3-ubyte.gz")
    made.update({k: tmp / k for k in ("corrupt_gz", "bad_labels", "swapped", "wrong_dir")})
    (tmp / "a_file").write_text("x")
    made["a_file"] = tmp / "a_file"
    del np, torch
    return made


BAD_INPUTS = [  # (case, argv built from the made files, what the error line must say)
    ("--out is a file", lambda f: ["--out", str(f["a_file"])], "a file is in the way"),
    ("--out under a file", lambda f: ["--out", str(f["a_file"] / "board")], "is a file"),
    ("--name ...", lambda f: ["--name", "..."], "board label"),
    ("--threads 0", lambda f: ["--threads", "0"], "--threads must be positive"),
    ("--name of 300 characters", lambda f: ["--name", "m" * 300], "board label"),
    ("an empty .pth", lambda f: ["--checkpoint", str(f["empty"])], "empty file"),
    ("a safetensors file cut in half", lambda f: ["--checkpoint", str(f["half"])], "truncated or corrupt safetensors"),
    ("a pickle that would run code", lambda f: ["--checkpoint", str(f["evil"])], "would call print when unpickled"),
    ("NaN classifier weights in a plain run", lambda f: ["--classifier-checkpoint", str(f["nan_classifier"])],
     "non-finite"),
    ("NaN MIM weights in a plain run", lambda f: ["--checkpoint", str(f["nan_mim"])], "non-finite"),
    ("a card.json that is not JSON", lambda f: ["--model", str(f["badcard"])], "not valid JSON"),
    ("a card.json without its dataset", lambda f: ["--model", str(f["misscard"])], "the card lacks dataset"),
    ("corrupt .gz files", lambda f: ["--data-dir", str(f["corrupt_gz"])], "unreadable"),
    ("labels out of range", lambda f: ["--data-dir", str(f["bad_labels"])], "outside 0-9"),
    ("swapped IDX files", lambda f: ["--data-dir", str(f["swapped"])], "look swapped"),
    ("--data-dir without the files", lambda f: ["--data-dir", str(f["wrong_dir"])], "no Fashion-MNIST test files"),
]


@pytest.mark.parametrize("case,argv,message", BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_every_bad_input_fails_first_in_one_line_and_writes_nothing(case, argv, message, board, tmp_path):
    import time
    made = _files(tmp_path)
    before = snapshot(board)
    args = argv(made)
    out = [] if "--out" in args else ["--out", str(board)]
    started = time.time()
    line = one_line_error(run_cli(*args, *out, "--n-examples", "4", "--no-progress"))
    assert message in line, line
    assert time.time() - started < 60, "failed first, before any attack"
    assert snapshot(board) == before


def test_a_safetensors_file_named_pth_loads(tmp_path):
    import zoo
    made = _files(tmp_path)
    bundle = zoo.load_model("mae_vit_t_fmnist", checkpoint=made["st_named_pth"])
    assert bundle.files["mim"]["sha256"] == zoo.load_model("mae_vit_t_fmnist").files["mim"]["sha256"]


def test_an_unreadable_board_is_refused_before_the_run(board):
    bad = board / "fashion_mnist" / "entries" / "broken.json"
    bad.write_text("{oops")
    before = snapshot(board)
    line = one_line_error(run_cli("--out", str(board), "--n-examples", "4", "--no-progress"))
    assert "broken.json" in line and "not valid JSON" in line
    assert snapshot(board) == before


def test_an_unwritable_cache_is_refused_before_the_run(tmp_path, monkeypatch):
    import os
    if os.geteuid() == 0:   # root writes anywhere: point the cache under a file instead
        (tmp_path / "f").write_text("x")
        monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path / "f" / "cache"))
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path / "ro" / "cache"))
    line = one_line_error(run_cli("--out", str(tmp_path / "out"), "--n-examples", "4", "--no-progress"))
    assert "MIMBENCH_HOME" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv,message", [(["--out", "{file}"], "not a folder"),
                                          (["--out", "{missing}"], "no such board folder"),
                                          (["--dataset", "cifar10"], "no entries")])
def test_report_command_refuses_a_wrong_board(argv, message, board, tmp_path):
    from benchmark.report import main
    (tmp_path / "file").write_text("x")
    argv = [a.format(file=tmp_path / "file", missing=tmp_path / "typo") for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(board)]
    before = snapshot(board)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(argv) == 2
    assert message in stderr.getvalue() and len(stderr.getvalue().strip().splitlines()) == 1
    assert snapshot(board) == before and not (tmp_path / "typo").exists()


def test_a_failing_report_step_leaves_the_board_as_it_was(board, monkeypatch, one_thread):
    """Fault injection: the reports fail after the entry was staged; nothing of the run lands."""
    from benchmark.leaderboard import report as writer
    before = snapshot(board)

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure while writing the reports")
    monkeypatch.setattr(writer.html, "write_dataset_page", broken)
    with pytest.raises(RuntimeError, match="injected"):
        run_cli("--out", str(board), "--name", "newcomer", "--n-examples", "4", "--batch-size", "4", "--suite", "fgsm",
                "--target", "reconstruction", "--no-progress")
    assert snapshot(board) == before
    assert not list(board.glob(".stage-*")) and not list(board.glob(".*.previous"))


def test_board_files_respect_the_umask(tmp_path, one_thread):
    import os
    import stat
    old = os.umask(0o022)
    try:
        assert run_cli("--out", str(tmp_path / "b"), "--n-examples", "4", "--batch-size", "4", "--suite", "fgsm",
                       "--target", "reconstruction", "--no-progress").returncode == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
