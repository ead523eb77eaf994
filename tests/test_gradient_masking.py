"""Gradient-masking flags: zero gradients, a randomised forward pass, a black-box attack beating the white-box
ones; computed by the runner per run (with the threat-model rows of the reconstruction table)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from benchmark.attacks import gradient_masking as GM
from benchmark.runner import Runner
from benchmark.suites import get_suite

from .helpers import StubBundle, tiny_classifier, tiny_mae
from .helpers import dataset_of as _dataset


class Quantized(nn.Module):
    """A classifier behind input quantisation: zero gradients everywhere (the classic masked gradient)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 4) / 4)


class Noisy(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x + 0.05 * torch.randn_like(x))


def test_basic_checks(fmnist_test):
    clf, x = tiny_classifier(), fmnist_test.images[:6]
    y = torch.zeros(6, dtype=torch.long)
    ce = lambda m: (lambda v: nn.functional.cross_entropy(m(v), y, reduction="none"))  # noqa: E731
    assert not GM.zero_gradient(ce(clf), x).any()
    assert GM.zero_gradient(ce(Quantized(clf)), x).all()
    assert not GM.randomized(clf, x).any()
    assert GM.randomized(Noisy(clf), x).all()


def test_runner_flags_a_gradient_masking_classifier(fmnist_test):
    clf = Quantized(tiny_classifier()).eval()
    x = fmnist_test.images[:8]
    with torch.no_grad():
        labels = clf(x).argmax(1)
    cell = get_suite("pgd").cells("fashion_mnist", "downstream")[2]  # eps 0.2
    result = Runner(StubBundle(classifier=clf), _dataset(x, labels), get_suite("pgd"), [replace(cell, steps=10)],
                    model_name="masked", batch_size=8, progress=False).run()
    gm = result.gradient_masking
    assert gm["downstream"]["zero_gradient"]["count"] == 8 and gm["downstream"]["zero_gradient"]["flag"]
    square = gm["downstream"]["black_box"][0]
    assert square["whitebox_robust"] > 0 and square["broken_only_by_black_box"] > 0 and square["flag"]
    assert gm["suspected"] and any("Square broke" in f for f in gm["flags"])
    fgsm = get_suite("fgsm").cells("fashion_mnist", "downstream")[2]
    result = Runner(StubBundle(classifier=clf), _dataset(x, labels), get_suite("fgsm"), [fgsm], model_name="masked",
                    batch_size=8, progress=False).run()
    assert "skipped" in result.gradient_masking["downstream"]["black_box"][0]  # beating FGSM proves nothing


def test_threat_rows_and_clean_flags_for_a_normal_mae(fmnist_test):
    mim = tiny_mae()
    x = fmnist_test.images[:8]
    cells = [replace(c, steps=4) for c in get_suite("threat").cells("fashion_mnist", "reconstruction")
             if c.eps == 0.1]
    result = Runner(StubBundle(mim=mim), _dataset(x, torch.zeros(8, dtype=torch.long)), get_suite("threat"), cells,
                    model_name="tiny", batch_size=4, progress=False).run()
    rows = {r["attack"]: r for r in result.reconstruction}
    assert set(rows) == {"none", "pgd", "pgd_agnostic", "pgd_visible", "pgd_masked"}
    assert rows["pgd_masked"]["mse"] == pytest.approx(rows["none"]["mse"], rel=1e-6)  # MAE control: no effect
    assert rows["pgd"]["mse"] > rows["none"]["mse"] and rows["pgd_agnostic"]["mse"] > rows["none"]["mse"]
    gm = result.gradient_masking
    assert "downstream" not in gm and not gm["reconstruction"]["zero_gradient"]["flag"]
    assert not gm["reconstruction"]["randomized_forward"]["flag"]
    noise = gm["reconstruction"]["black_box"][0]
    assert noise["attack"] == "random_noise" and set(noise["whitebox"]) == {"pgd", "pgd_agnostic", "pgd_visible"}
    assert noise["black_box_mean"] < noise["whitebox_mean"] and not noise["flag"] and not gm["suspected"]


def test_checks_run_under_bf16_autocast(fmnist_test, monkeypatch):
    """`--amp bf16` runs the whole runner under autocast: the attack libraries get float32 logits."""
    monkeypatch.setattr(GM, "SQUARE_QUERIES", 20)
    clf = tiny_classifier()
    x = fmnist_test.images[:8]
    with torch.no_grad():
        labels = clf(x).argmax(1)
    cells = [replace(c, steps=GM.MIN_WHITEBOX_STEPS) for c in get_suite("pgd").cells("fashion_mnist", "downstream")]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = Runner(StubBundle(classifier=clf), _dataset(x, labels), get_suite("pgd"), cells, model_name="tiny",
                        batch_size=8, progress=False).run()
    square = result.gradient_masking["downstream"]["black_box"]
    assert [b["attack"] for b in square] == ["square"] * 3 and all("skipped" not in b for b in square)


def test_square_needs_a_larger_share_against_pgd_alone():
    """Square breaking 4 of 11 survivors (the adversarial zoo at Linf 0.2) is evidence of broken gradients against
    an ensemble with APGD, not against PGD-20 alone; 10 of 11 is evidence against either."""
    def block(whitebox, broken):
        return {"black_box": [{"attack": "square", "norm": "Linf", "eps": 0.2, "whitebox": whitebox, "n": 200,
                               "whitebox_robust": 11, "broken_only_by_black_box": broken, "flag": True}]}
    judged = lambda wb, k: GM.current_flags(block(wb, k))["black_box"][0]["flag"]  # noqa: E731
    assert judged(["apgd_ce", "apgd_t", "pgd"], 4) and not judged(["pgd"], 4)
    assert judged(["pgd"], 10) and judged(["apgd_ce", "pgd"], 10)
    assert GM.summarise_square("Linf", 0.2, ["pgd"], [{"sample_id": list(range(11)), "whitebox_robust": [True] * 11,
                                                        "square_broken": [True] * 4 + [False] * 7}])["flag"] is False
    message = GM.flag_messages("downstream", GM.current_flags(block(["pgd"], 10)))[0]
    assert "> 0.50" in message
