"""Properties every attack, mask and metric must keep, on inputs hypothesis draws (small models, few examples)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark import metrics as M
from benchmark.attacks import build_attack
from benchmark.attacks.checks import perturbation_norm
from benchmark.suites import Cell
from zoo import masking

from .helpers import tiny_classifier, tiny_mae

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_MAE, _CLF = tiny_mae(), tiny_classifier()

images = st.integers(0, 2 ** 31 - 1).map(lambda s: torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(s)))
sample_ids = st.lists(st.integers(0, 10 ** 6), min_size=3, max_size=3, unique=True).map(torch.tensor)

RECON = [("fgsm", 1, {}), ("bim", 3, {}), ("pgd", 3, {}), ("apgd", 4, {}), ("feature_pgd", 3, {}),
         ("mi_pgd", 3, {"params": (("hsic_weight", 1.0),)}), ("pgd", 2, {"scope": "visible"}),
         ("pgd", 2, {"threat": "agnostic", "eot_samples": 2})]
DOWN = [("fgsm", 1, {}), ("bim", 3, {}), ("pgd", 3, {"random_start": True}), ("feature_pgd", 3, {}),
        ("mi_pgd", 3, {"params": (("hsic_weight", 1.0),)})]


def _in_threat_model(x_adv, x, eps, norm):
    assert x_adv.shape == x.shape and torch.isfinite(x_adv).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (perturbation_norm(x_adv - x, norm) <= eps * (1 + 1e-5) + 1e-6).all()


@pytest.mark.parametrize("attack,steps,extra", RECON)
@SETTINGS
@given(x=images, ids=sample_ids, eps=st.floats(0.001, 0.3), seed=st.integers(0, 100),
       norm=st.sampled_from(["Linf", "L2"]))
def test_reconstruction_attacks_stay_in_the_ball_and_the_image(attack, steps, extra, x, ids, eps, seed, norm):
    eps = eps * (10 if norm == "L2" else 1)
    cell = Cell("reconstruction", attack, norm, eps, steps=steps, alpha=2.5 * eps / steps, **extra)
    mask = _MAE.make_mask(ids, seed=seed)
    _in_threat_model(build_attack(_MAE, cell, seed=seed)(x, mask, ids), x, eps, norm)


@pytest.mark.parametrize("attack,steps,extra", DOWN)
@SETTINGS
@given(x=images, ids=sample_ids, eps=st.floats(0.001, 0.3), seed=st.integers(0, 100),
       norm=st.sampled_from(["Linf", "L2"]))
def test_downstream_attacks_stay_in_the_ball_and_the_image(attack, steps, extra, x, ids, eps, seed, norm):
    if attack in ("fgsm", "bim"):
        norm = "Linf"
    eps = eps * (10 if norm == "L2" else 1)
    cell = Cell("downstream", attack, norm, eps, steps=steps, alpha=2.5 * eps / steps, **extra)
    with torch.no_grad():
        y = _CLF(x).argmax(1)
    _in_threat_model(build_attack(_CLF, cell, seed=seed).perturb(x, y, ids), x, eps, norm)


MASKS = {  # the three families' schemes on a 14 x 14 grid (MAE 75%, SimMIM 2 x 2 cells at 60%, BEiT 75 patches)
    "mae": lambda ids, seed: masking.random_mask(ids, 196, 0.75, seed=seed),
    "simmim": lambda ids, seed: masking.coarse_mask(ids, (14, 14), 2, 0.6, seed=seed),
    "beit": lambda ids, seed: masking.blockwise_mask(ids, (14, 14), 75, seed=seed),
}


@pytest.mark.parametrize("family", sorted(MASKS))
@settings(max_examples=25, deadline=None)
@given(ids=st.lists(st.integers(0, 10 ** 7), min_size=1, max_size=6, unique=True), seed=st.integers(0, 10 ** 6))
def test_a_mask_is_a_pure_function_of_seed_and_sample_id(family, ids, seed):
    make = MASKS[family]
    batch = make(torch.tensor(ids), seed)
    for i, sid in enumerate(ids):   # alone, or in any batch, a sample gets the same mask
        assert torch.equal(batch[i], make(torch.tensor([sid]), seed)[0])
    assert torch.equal(batch.flip(0), make(torch.tensor(ids[::-1]), seed))
    assert torch.equal(batch, make(torch.tensor(ids), seed))


@settings(max_examples=20, deadline=None)
@given(x=images, n_masked=st.integers(1, 49))
def test_metrics_of_identical_images_are_at_their_bound(x, n_masked):
    mask = torch.zeros(3, 49, dtype=torch.bool)
    mask[:, :n_masked] = True
    assert torch.equal(M.masked_mse(x, x, mask, 4), torch.zeros(3))
    assert (M.masked_psnr(x, x, mask, 4) >= 80).all()             # piq: 10 log10(1 / (0 + 1e-8))
    torch.testing.assert_close(M.ssim(x, x), torch.ones(3))
    tokens = torch.randn(3, 49, 8)
    assert torch.equal(M.token_agreement(tokens, tokens, mask), torch.ones(3))
