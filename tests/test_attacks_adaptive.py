"""Adaptive attacks (feature-space PGD, MI-aware PGD) raise their objective, stay in budget, on both targets;
APGD on the MIM loss behaves; the mask-agnostic attacker never uses the evaluation mask."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from benchmark.attacks import build_attack
from benchmark.attacks._geometry import clip_to_image, random_start
from benchmark.attacks.checks import check_adversarial
from benchmark.attacks.hsic import median_bandwidth, normalized_hsic
from benchmark.attacks.reconstruction import (
    MIMAPGD,
    MIMMIPGD,
    MIMPGD,
    MIMFeaturePGD,
    MIMRandomNoise,
    mim_attack_loss,
)
from benchmark.attacks.reconstruction.apgd import checkpoints
from benchmark.attacks.reconstruction.feature_pgd import encoder_features, feature_distance
from benchmark.suites import get_suite

from .helpers import tiny_classifier, tiny_mae

SEED = 0


@pytest.fixture(scope="module")
def batch(fmnist_test):
    return fmnist_test.images[:8], torch.arange(8)


def _start(x, ids, eps):
    return x + clip_to_image(x, random_start(x, eps, "Linf", ids, SEED))


def test_feature_pgd_raises_the_feature_distance(batch):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    cell = [c for c in get_suite("adaptive").cells("fashion_mnist", "reconstruction") if c.attack == "feature_pgd"][1]
    attack = build_attack(model, replace(cell, steps=8), seed=SEED)
    assert isinstance(attack, MIMFeaturePGD)
    x_adv = attack(x, mask, ids)
    check_adversarial(x_adv, x, cell.eps, "Linf")
    with torch.no_grad():
        clean = encoder_features(model, x, mask)
        start = feature_distance(encoder_features(model, _start(x, ids, cell.eps), mask), clean)
        end = feature_distance(encoder_features(model, x_adv, mask), clean)
    assert (end >= start - 1e-7).all() and end.mean() > 2 * start.mean()


def test_mi_pgd_raises_its_objective_and_the_mim_loss(batch):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    cell = [c for c in get_suite("adaptive").cells("fashion_mnist", "reconstruction") if c.attack == "mi_pgd"][1]
    attack = build_attack(model, replace(cell, steps=8), seed=SEED)
    assert isinstance(attack, MIMMIPGD) and attack.hsic_weight == 1.0
    x_adv = attack(x, mask, ids)
    check_adversarial(x_adv, x, cell.eps, "Linf")

    def objective(v):
        with torch.no_grad():
            out = model.forward_mim(v, mask, target=x, reduction="none")
            h = normalized_hsic(out.latent, v, median_bandwidth(model.forward_mim(x, mask).latent), median_bandwidth(x))
            return out.loss.mean() + h, out.loss
    start_obj, start_loss = objective(_start(x, ids, cell.eps))
    end_obj, end_loss = objective(x_adv)
    assert end_obj > start_obj and (end_loss >= start_loss - 1e-7).all()


@pytest.mark.parametrize("attack", ["feature_pgd", "mi_pgd"])
def test_downstream_adaptive_attacks_raise_their_objective(batch, attack):
    clf = tiny_classifier()
    x, ids = batch
    with torch.no_grad():
        y = clf(x).argmax(1)
    cell = [c for c in get_suite("adaptive").cells("fashion_mnist", "downstream") if c.attack == attack][0]
    x_adv = build_attack(clf, replace(cell, steps=8), seed=SEED).perturb(x, y, ids)
    check_adversarial(x_adv, x, cell.eps, "Linf")

    def objective(v):
        with torch.no_grad():
            f = clf.features(v)
            if attack == "feature_pgd":
                return (f - clf.features(x)).pow(2).flatten(1).mean(1).mean()
            h = normalized_hsic(f, v, median_bandwidth(clf.features(x)), median_bandwidth(x))
            return F.cross_entropy(clf(v), y) + h
    assert objective(x_adv) > objective(_start(x, ids, cell.eps))
    with torch.no_grad():
        torch.testing.assert_close(clf.head(clf.features(x)), clf(x))  # features + head = the classifier


def test_apgd_schedule_budget_and_strength(batch):
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    for norm, eps in (("Linf", 0.1), ("L2", 1.0)):
        x_adv = MIMAPGD(model, eps, norm=norm, steps=10)(x, mask, ids)
        check_adversarial(x_adv, x, eps, norm)
        with torch.no_grad():
            clean = mim_attack_loss(model, x, x, mask)
            adv = mim_attack_loss(model, x_adv, x, mask)
            noise = mim_attack_loss(model, MIMRandomNoise(model, eps, norm=norm, samples=4)(x, mask, ids), x, mask)
        assert (adv > clean).all() and adv.mean() > noise.mean()
    part = MIMAPGD(model, 0.1, steps=10)(x[2:5], mask[2:5], ids[2:5])  # per-sample state: batch-independent
    torch.testing.assert_close(MIMAPGD(model, 0.1, steps=10)(x, mask, ids)[2:5], part, atol=1e-6, rtol=0)


def test_agnostic_attacker_never_uses_the_evaluation_mask(batch):
    model = tiny_mae()
    x, ids = batch
    mask_a, mask_b = model.make_mask(ids, seed=0), model.make_mask(ids, seed=5)
    assert not torch.equal(mask_a, mask_b)
    attack = MIMPGD(model, 0.1, steps=3, threat="agnostic", eot_samples=3)
    torch.testing.assert_close(attack(x, mask_a, ids), attack(x, mask_b, ids), rtol=0, atol=0)
    batched = MIMPGD(model, 0.1, steps=3, threat="agnostic", eot_samples=3, max_batch=8)  # one mask per pass
    torch.testing.assert_close(batched(x, mask_a, ids), attack(x, mask_a, ids), atol=1e-6, rtol=0)


@pytest.mark.parametrize("stem", ["simmim", "beit"])
def test_every_reconstruction_attack_runs_on_every_family(official_dir, stem):
    """SimMIM (L1 on masked pixels) and BEiT (tokens, no pixels) through every attack of the suites."""
    import zoo

    from .helpers import official_arch
    family, arch = official_arch(stem)
    torch.manual_seed(0)
    model = zoo.build(family, **arch).eval()
    g = torch.Generator().manual_seed(1)
    x, ids = torch.rand(4, 3, 32, 32, generator=g), torch.arange(4)
    mask = model.make_mask(ids)
    seen = set()
    for c in get_suite("full").cells("cifar10", "reconstruction"):
        if (c.impl, c.threat, c.scope, c.norm) in seen:
            continue
        seen.add((c.impl, c.threat, c.scope, c.norm))
        cell = replace(c, steps=min(c.steps, 3), eot_samples=min(c.eot_samples, 2))
        x_adv = build_attack(model, cell, seed=SEED)(x, mask, ids)
        check_adversarial(x_adv, x, cell.eps, cell.norm)
        tokens = model.forward_mim(x, mask).pred.argmax(-1) if family == "beit" else None
        with torch.no_grad():
            before = mim_attack_loss(model, x, x, mask, tokens)
            after = mim_attack_loss(model, x_adv, x, mask, tokens)
        if cell.impl in ("pgd", "bim", "apgd", "mi_pgd") and cell.threat == "aware" and cell.scope != "masked":
            assert after.mean() > before.mean(), (stem, cell.attack, cell.norm, cell.scope)
        if cell.scope == "masked":  # the control: both families replace masked patches by a mask token
            torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert {i for i, _, _, _ in seen} >= {"fgsm", "bim", "pgd", "apgd", "feature_pgd", "mi_pgd"}
    assert {s for _, _, s, _ in seen} == {"all", "visible", "masked"}
