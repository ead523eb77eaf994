"""The trainer: a recipe runs for a few steps and yields a folder that loads and benchmarks."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

import zoo

from .helpers import REPO


def test_recipe_two_steps_gives_a_loadable_model(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--recipe", "mae_vit_t_fmnist", "--max-steps", "2",
                           "--out", str(out), "--no-eval"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["complete"] is False and card["training"]["stages"]["pretrain"]["steps"] == 2
    bundle = zoo.load_model(out)
    assert bundle.mim is not None and bundle.classifier is not None
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert bundle.classifier(x).shape == (2, 10)
        assert bundle.mim.forward_mim(x, bundle.mim.make_mask([0, 1])).reconstruction.shape == x.shape
    assert (out / "log_pretrain.csv").read_text().startswith("epoch,step,lr,loss")


def test_list_recipes_json():
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--list-recipes", "--json"], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert {"name": "mae_vit_t_fmnist", "defenses": []} in rows
