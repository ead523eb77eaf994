"""BEiT end to end in the runner: token agreement under attack, token accuracy with a user-supplied tokenizer."""
from __future__ import annotations

import pytest
import torch

import zoo
from benchmark.runner import Runner
from benchmark.suites import Cell, get_suite
from zoo.bundle import ModelBundle
from zoo.data import ImageDataset
from zoo.registry import ModelCard

from .helpers import official_arch

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(official_dir, tokenizer=None):
    family, arch = official_arch("beit")
    mim = zoo.build(family, **arch).eval()  # BEiT's own 0.5 / 0.5 normalisation
    zoo.load_checkpoint(mim, official_dir / "beit.pth")
    mim.set_tokenizer(tokenizer)
    card = ModelCard(name="beit_tiny", family="beit", arch=arch, dataset="cifar10", preprocessing={})
    g = torch.Generator().manual_seed(0)
    data = ImageDataset("cifar10", "test", torch.rand(6, 3, 32, 32, generator=g), torch.zeros(6, dtype=torch.long),
                        torch.arange(6), ("x",), "random")
    cells = [Cell("reconstruction", "pgd", "Linf", 16 / 255, steps=5, alpha=6 / 255, random_start=True)]
    runner = Runner(ModelBundle(card, mim, None), data, get_suite("pgd"), cells, model_name="beit_tiny",
                    batch_size=4, progress=False)
    return runner.run()


def test_beit_token_agreement_end_to_end(official_dir):
    res = _run(official_dir)
    clean, attacked = res.reconstruction
    assert clean["attack"] == "none" and clean["token_agreement"] == 1.0
    assert all(clean[m] is None for m in ("mse", "psnr", "ssim", "lpips"))
    assert 0.0 <= attacked["token_agreement"] < 0.9 and attacked["psnr_input"] > 20
    assert "token_accuracy" not in attacked  # off by default: no tokenizer


def test_beit_token_accuracy_with_a_tokenizer(official_dir):
    def tokenizer(x: torch.Tensor) -> torch.Tensor:  # stands in for a DALL-E d-VAE: any images -> N x L ids
        return (x.mean(1).unfold(1, 4, 4).unfold(2, 4, 4).mean((-1, -2)).flatten(1) * 50).long().clamp(0, 49)
    res = _run(official_dir, tokenizer)
    clean, attacked = res.reconstruction
    assert 0.0 <= clean["token_accuracy"] <= 1.0 and 0.0 <= attacked["token_accuracy"] <= 1.0
    assert attacked["token_agreement"] < 1.0
