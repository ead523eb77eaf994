"""The command line as a user runs it: end to end on the embedded default, and clean failures."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.leaderboard.entries import DOWNSTREAM_COLUMNS, RECON_COLUMNS

from .helpers import REPO


def run_bench(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, str(REPO / "run_bench.py"), *args], capture_output=True, text=True,
                          cwd=REPO, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lb")
    proc = run_bench("--n-examples", "24", "--batch-size", "12", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_default_run_writes_tidy_tables(default_run):
    out, _ = default_run
    rec = pd.read_csv(out / "fashion_mnist" / "reconstruction.csv")
    down = pd.read_csv(out / "fashion_mnist" / "downstream.csv")
    assert list(rec.columns) == RECON_COLUMNS and list(down.columns) == DOWNSTREAM_COLUMNS
    assert set(rec["eps"]) == {0.0, 0.05, 0.1, 0.2} and set(down["eps"]) == {0.0, 0.05, 0.1, 0.2}
    assert (rec["model"] == "mae_vit_t_fmnist").all() and (rec["n"] == 24).all()
    clean = rec[rec.attack == "none"].iloc[0]
    assert clean["norm"] == "none" and pd.isna(clean["psnr_input"])
    for col in ("mse", "psnr", "ssim"):
        assert rec[col].notna().all()
    assert (out / "fashion_mnist" / "reconstruction.md").read_text().count("| `mae_vit_t_fmnist` | 24 |") == 1
    entry = json.loads((out / "fashion_mnist" / "entries" / "mae_vit_t_fmnist.json").read_text())
    settings = entry["runs"]["pgd"]["settings"]
    assert settings["n"] == 24 and settings["amp"] == "none" and settings["early_stop"] is True
    assert entry["card"]["local_dir"] == "zoo/weights/mae_vit_t_fmnist"   # portable: no machine's path


def test_attacks_hurt_and_grow_with_eps(default_run):
    out, _ = default_run
    rec = pd.read_csv(out / "fashion_mnist" / "reconstruction.csv").sort_values("eps")
    down = pd.read_csv(out / "fashion_mnist" / "downstream.csv").sort_values("eps")
    assert rec["psnr"].is_monotonic_decreasing and rec["psnr"].iloc[-1] < rec["psnr"].iloc[0] - 1.0
    assert rec["psnr_input"].iloc[1:].is_monotonic_decreasing
    assert down["accuracy"].is_monotonic_decreasing and down["accuracy"].iloc[-1] < down["accuracy"].iloc[0]


def test_lpips_is_reported_unavailable_not_faked(default_run):
    """With the AlexNet backbone in the torch hub cache every row has LPIPS; without it none has, and the run and
    the board say why (never a value from random weights)."""
    from benchmark.metrics import _alexnet_weights_path
    out, proc = default_run
    rec = pd.read_csv(out / "fashion_mnist" / "reconstruction.csv")
    if _alexnet_weights_path().is_file():
        assert rec["lpips"].notna().all() and rec["lpips"].between(0, 1).all()
        assert "lpips unavailable" not in proc.stdout
    else:
        assert rec["lpips"].isna().all()
        assert "lpips unavailable" in proc.stdout and "AlexNet" in proc.stdout
        assert "LPIPS unavailable offline" in (out / "fashion_mnist" / "reconstruction.md").read_text()


@pytest.mark.parametrize("args,message", [
    (["--model", "no_such_model"], "unknown model"),
    (["--suite", "no_such_suite"], "unknown suite"),
    (["--n-examples", "-5"], "--n-examples"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"], "CIFAR-10"),
    (["--checkpoint", "/nonexistent/file.pth"], "no such file"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    proc = run_bench(*args, "--out", str(out), "--n-examples" if "--n-examples" not in args else "--seed", "4")
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_published_model_offline_names_url_and_target(tmp_path):
    proc = run_bench("--model", "mae_vit_b", "--out", str(tmp_path / "out"), env={"MIMBENCH_HOME": str(tmp_path)})
    assert proc.returncode == 2
    assert "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_base.pth" in proc.stderr
    assert str(tmp_path / "checkpoints" / "mae_visualize_vit_base.pth") in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_list_models_and_suites():
    proc = run_bench("--list-models")
    assert proc.returncode == 0 and "mae_vit_t_fmnist" in proc.stdout and "mae_vit_b" in proc.stdout
    proc = run_bench("--list-suites")
    assert proc.returncode == 0 and "pgd" in proc.stdout and "0.05" in proc.stdout
