"""The command line with the published zoo: unsafe or broken files, offline sources, the model list, top-1 check."""
from __future__ import annotations

import os
import pickle

import pytest

import zoo
from benchmark.cli import expected_top1_warning, main

from .test_cli import run_bench


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mimbench_pwned_cli",))


def _one_line_exit_2(proc, *needles: str) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


class _Proc:
    """`main(argv)` in this process (what run_bench.py runs), captured like a finished subprocess."""

    def __init__(self, argv, capsys):
        self.returncode = main(argv)
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err


def test_a_pickle_that_runs_code_exits_2_and_runs_nothing(tmp_path):
    marker = "/tmp/mimbench_pwned_cli"
    if os.path.exists(marker):
        os.unlink(marker)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"model": {"w": _Boom()}}, f)
    proc = run_bench("--model", "mae_vit_b", "--checkpoint", str(evil), "--out", str(tmp_path / "out"),
                     env={"MIMBENCH_HOME": str(tmp_path), "MIMBENCH_OFFLINE": "1"})
    _one_line_exit_2(proc, "evil.pth", "refused")
    assert not os.path.exists(marker) and not (tmp_path / "out").exists()


def test_a_truncated_file_exits_2_in_one_line(tmp_path, official_dir, monkeypatch, capsys):
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("MIMBENCH_OFFLINE", "1")
    data = (official_dir / "beit.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 3])
    proc = _Proc(["--model", "beit_b", "--checkpoint", str(cut), "--out", str(tmp_path / "out")], capsys)
    _one_line_exit_2(proc, "cut.pth", "truncated")


def test_simmim_offline_names_the_web_page_and_target(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path))
    proc = _Proc(["--model", "simmim_vit_b", "--target", "reconstruction", "--out", str(tmp_path / "out")], capsys)
    line = _one_line_exit_2(proc, "simmim_pretrain__vit_base__img224__800ep.pth", "github.com/microsoft/SimMIM")
    assert str(tmp_path / "checkpoints" / "simmim_pretrain__vit_base__img224__800ep.pth") in line


def test_list_models_shows_every_entry_source_and_presence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "beit_base_patch16_224_pt22k.pth").write_bytes(b"x")
    proc = _Proc(["--list-models"], capsys)
    assert proc.returncode == 0
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    for name in zoo.list_models():
        card = zoo.get_card(name)
        assert name in rows and card.family in rows[name]
        if card.local_dir is None:
            assert card.mim_sources[0].filename in rows[name] or name == "beit_b"
            assert card.classifier_sources[0].filename in rows[name]
    assert "mim: present (" + str(tmp_path / "checkpoints" / "beit_base_patch16_224_pt22k.pth") in rows["beit_b"]
    assert "classifier: missing (beit_base_patch16_224_pt22k_ft22kto1k.pth from https://" in rows["beit_b"]
    assert "by hand from https://github.com/microsoft/SimMIM" in rows["simmim_vit_b"]


@pytest.mark.parametrize("dataset,n,acc,warns", [
    ("imagenet", 5000, 0.851, False),     # the paper's 0.852: fine
    ("imagenet", 5000, 0.601, True),      # e.g. ImageNet-default mean/std on BEiT: far off
    ("imagenet", 100, 0.2, False),        # too few samples to judge
    ("cifar10", 5000, 0.1, False),        # another dataset: the paper's number does not apply
])
def test_expected_top1_warning(dataset, n, acc, warns):
    msg = expected_top1_warning(zoo.get_card("beit_b"), dataset, n, acc)
    assert (msg is not None) == warns
    if warns:
        assert "\n" not in msg and "0.852" in msg and "beit_b" in msg


@pytest.mark.parametrize("folder,recorded", [
    ("/work/board3/zoo/weights/mae_vit_t_fmnist_trades", "zoo/weights/mae_vit_t_fmnist_trades"),  # any worktree
    ("/home/alice/runs/my_mae", "my_mae"),                                 # a user's trainer folder: its name only
    ("relative/zoo/weights/x", "zoo/weights/x"),
])
def test_entries_record_a_portable_trainer_folder(folder, recorded):
    """An entry's card names the shipped zoo folder relative to the repository, a user's folder by its name:
    a committed or submitted entry carries no absolute path of the machine that ran it."""
    card = zoo.ModelCard("m", "mae", {}, "fashion_mnist", {}, local_dir=folder)
    assert card.entry_dict()["local_dir"] == recorded and card.to_dict()["local_dir"] == folder
    assert zoo.ModelCard("m", "mae", {}, "fashion_mnist", {}).entry_dict()["local_dir"] is None
