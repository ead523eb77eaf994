"""Downstream attacks: the benchmark's numbers are exactly what torchattacks / AutoAttack give on the same samples
with the same seeding; every perturbation is within its budget; the runner counts robust accuracy correctly."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchattacks

from benchmark.attacks import build_attack
from benchmark.attacks.base import batch_seed
from benchmark.attacks.checks import check_adversarial, perturbation_norm
from benchmark.attacks.downstream import autoattack_backend
from benchmark.runner import Runner
from benchmark.suites import get_suite

from .helpers import StubBundle, tiny_classifier
from .helpers import dataset_of as _dataset

SEED = 3


def suite_cell(suite: str, attack: str, norm: str, index: int = 1, target: str = "downstream"):
    cells = [c for c in get_suite(suite).cells("fashion_mnist", target) if c.attack == attack and c.norm == norm]
    return cells[index]


@pytest.fixture(scope="module")
def batch(fmnist_test):
    clf = tiny_classifier()
    x, ids = fmnist_test.images[:12], torch.arange(12)
    with torch.no_grad():
        y = clf(x).argmax(1)  # labels the model gets right, so every sample is attacked
    return clf, x, y, ids


def _direct(model, cell):
    p = dict(cell.params)
    if cell.impl == "fgsm":
        return torchattacks.FGSM(model, eps=cell.eps)
    if cell.impl == "bim":
        return torchattacks.BIM(model, eps=cell.eps, alpha=cell.alpha, steps=cell.steps)
    if cell.impl == "pgd" and cell.norm == "Linf":
        return torchattacks.PGD(model, eps=cell.eps, alpha=cell.alpha, steps=cell.steps, random_start=True)
    if cell.impl == "pgd":
        return torchattacks.PGDL2(model, eps=cell.eps, alpha=cell.alpha, steps=cell.steps, random_start=True)
    (c,) = p["c"]   # one c: exactly torchattacks.CW
    return torchattacks.CW(model, c=c, kappa=p["kappa"], steps=cell.steps, lr=p["lr"])


@pytest.mark.parametrize("suite,attack,norm", [("fgsm", "fgsm", "Linf"), ("bim", "bim", "Linf"),
                                               ("pgd", "pgd", "Linf"), ("pgd_l2", "pgd", "L2"), ("cw", "cw", "L2")])
def test_equals_a_direct_torchattacks_call(batch, suite, attack, norm):
    clf, x, y, ids = batch
    cell = suite_cell(suite, attack, norm)
    if attack == "cw":
        cell = replace(cell, params=tuple((k, (10.0,) if k == "c" else v) for k, v in cell.params))
    options = {"bim": {"early_stop": False}, "pgd": {"early_stop": False, "start": "torch"}}.get(attack, {})
    ours = build_attack(clf, cell, seed=SEED, **options).perturb(x, y, ids)
    torch.manual_seed(batch_seed(SEED, ids))
    direct = _direct(clf, cell)(x, y)
    if attack == "cw":  # broken only within the budget
        over = perturbation_norm(direct - x, "L2") > cell.eps
        direct[over] = x[over]
    torch.testing.assert_close(ours, direct, rtol=0, atol=0)
    check_adversarial(ours, x, cell.eps, norm)
    with torch.no_grad():
        assert (clf(ours).argmax(1) != y).any(), "the attack breaks something on an untrained model"


@pytest.mark.parametrize("suite,attack,norm", [("bim", "bim", "Linf"), ("pgd", "pgd", "Linf"), ("pgd_l2", "pgd", "L2")])
def test_early_stopping_breaks_every_sample_the_full_run_breaks(fmnist_test, suite, attack, norm):
    """Frozen at its first misclassifying iterate, a sample is broken whenever torchattacks' last iterate is."""
    clf = tiny_classifier()
    x, ids = fmnist_test.images[:24], torch.arange(24)
    with torch.no_grad():
        y = clf(x).argmax(1)
    cell = replace(suite_cell(suite, attack, norm, index=0), steps=10)
    start = {"start": "torch"} if attack == "pgd" else {}   # BIM has no random start
    full = build_attack(clf, cell, seed=SEED, early_stop=False, **start).perturb(x, y, ids)
    early = build_attack(clf, cell, seed=SEED, early_stop=True, **start).perturb(x, y, ids)
    check_adversarial(early, x, cell.eps, norm)
    with torch.no_grad():
        broken_full, broken_early = clf(full).argmax(1) != y, clf(early).argmax(1) != y
    assert bool((broken_early | ~broken_full).all())
    assert 0 < int(broken_full.sum()) < len(x)  # the comparison says something
    per_sample = build_attack(clf, cell, seed=SEED).perturb(x, y, ids)  # starts seeded by sample id
    alone = build_attack(clf, cell, seed=SEED).perturb(x[5:9], y[5:9], ids[5:9])
    torch.testing.assert_close(per_sample[5:9], alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm,eps,index", [("Linf", 0.05, 0), ("L2", 2.0, 2)])
def test_autoattack_equals_a_direct_call(batch, norm, eps, index):
    clf, x, y, ids = batch
    cell = suite_cell("autoattack", "autoattack", norm, index=index)
    assert cell.eps == eps
    ours = build_attack(clf, cell, seed=SEED).perturb(x, y, ids)
    cls, package = autoattack_backend()
    torch.manual_seed(batch_seed(SEED, ids))
    if package == "pyautoattack":
        aa = cls(clf, norm=norm, eps=eps, version="standard", seed=batch_seed(SEED, ids), device=x.device)
        direct, _ = aa.run_standard_evaluation(x, y, batch_size=len(x))
    else:
        aa = cls(clf, norm=norm, eps=eps, version="standard", seed=batch_seed(SEED, ids), device="cpu", verbose=False)
        direct = aa.run_standard_evaluation(x, y, bs=len(x))
    torch.testing.assert_close(ours, direct, rtol=0, atol=0)
    check_adversarial(ours, x, eps, norm)


def test_cw_keeps_each_samples_smallest_success_over_c(batch):
    """Over the suite's values of c, a sample is broken when one torchattacks.CW run breaks it, at the smallest
    L2 norm among the runs that do."""
    clf, x, y, ids = batch
    cell = suite_cell("cw", "cw", "L2", index=0)
    cs = dict(cell.params)["c"]
    assert len(cs) > 1
    ours = build_attack(clf, cell, seed=SEED)(x, y, ids)
    p = dict(cell.params)
    runs = [torchattacks.CW(clf, c=c, kappa=p["kappa"], steps=cell.steps, lr=p["lr"])(x, y) for c in cs]
    with torch.no_grad():
        broken = torch.stack([clf(a).argmax(1) != y for a in runs])
        ours_broken = clf(ours).argmax(1) != y
    norms = torch.stack([perturbation_norm(a - x, "L2") for a in runs]).masked_fill(~broken, float("inf"))
    assert torch.equal(ours_broken, broken.any(0))
    assert 0 < int(ours_broken.sum())
    torch.testing.assert_close(perturbation_norm(ours - x, "L2")[ours_broken], norms.min(0).values[ours_broken])
    assert torch.equal(ours[~ours_broken], x[~ours_broken])


def test_cw_counts_only_within_budget(batch):
    clf, x, y, ids = batch
    cell = suite_cell("cw", "cw", "L2", index=0)
    attack = build_attack(clf, cell, seed=SEED)
    raw = attack(x, y, ids)
    norms = perturbation_norm(raw - x, "L2")
    tight = replace(cell, eps=float(norms[norms > 0].min()) * 0.999)  # a budget just below CW's smallest success
    kept = build_attack(clf, tight, seed=SEED).within_budget(raw, x)
    assert torch.equal(kept[norms > tight.eps], x[norms > tight.eps])
    check_adversarial(kept, x, tight.eps, "L2")
    assert attack.eps_independent


def test_adaptive_attacks_within_budget_and_rng_untouched(batch):
    clf, x, y, ids = batch
    state = torch.random.get_rng_state()
    for attack in ("feature_pgd", "mi_pgd"):
        cell = suite_cell("adaptive", attack, "Linf", index=0)
        x_adv = build_attack(clf, cell, seed=SEED).perturb(x, y, ids)
        check_adversarial(x_adv, x, cell.eps, "Linf")
    assert torch.equal(state, torch.random.get_rng_state())


def test_runner_accuracy_equals_direct_call_on_the_clean_correct_samples(fmnist_test):
    clf = tiny_classifier()
    x = fmnist_test.images[:16]
    with torch.no_grad():
        pred = clf(x).argmax(1)
    labels = torch.where(torch.arange(16) % 3 == 0, (pred + 1) % 10, pred)  # every third sample wrong clean
    cell = suite_cell("pgd", "pgd", "Linf", index=0)
    runner = Runner(StubBundle(classifier=clf), _dataset(x, labels), get_suite("pgd"), [cell], model_name="tiny",
                    batch_size=8, seed=SEED, progress=False)
    result = runner.run()
    acc = {r["attack"]: r["accuracy"] for r in result.downstream}
    robust = 0
    for start in (0, 8):  # batches are fixed by sample id; only clean-correct samples are attacked
        ids = torch.arange(start, start + 8)
        ok = (pred[ids] == labels[ids]).nonzero().flatten()
        sel = ids[ok]
        adv = build_attack(clf, cell, seed=SEED).perturb(x[sel], labels[sel], sel)
        with torch.no_grad():
            robust += int((clf(adv).argmax(1) == labels[sel]).sum())
    assert acc["none"] == pytest.approx(float((pred == labels).float().mean()))
    assert acc["pgd"] == pytest.approx(robust / 16)
    assert acc["pgd"] < acc["none"]
    gm = result.gradient_masking["downstream"]
    assert gm["zero_gradient"]["count"] == 0 and gm["randomized_forward"]["count"] == 0
    assert [b["attack"] for b in gm["black_box"]] == ["square"]


def test_cw_runs_once_for_every_budget(fmnist_test, monkeypatch):
    from benchmark.attacks import gradient_masking
    monkeypatch.setattr(gradient_masking, "SQUARE_QUERIES", 50)  # keep the black-box check short here
    clf = tiny_classifier()
    x = fmnist_test.images[:8]
    with torch.no_grad():
        labels = clf(x).argmax(1)
    cells = [replace(c, steps=20) for c in get_suite("cw").cells("fashion_mnist", "downstream")]
    runner = Runner(StubBundle(classifier=clf), _dataset(x, labels), get_suite("cw"), cells, model_name="tiny",
                    batch_size=8, seed=SEED, progress=False)
    calls = []
    from benchmark.attacks.downstream.cw import CW
    original = CW.forward

    def counting(self, *args, **kwargs):
        calls.append(self.eps)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(CW, "forward", counting)
    rows = runner.run().downstream
    assert len(calls) == 1
    accs = [r["accuracy"] for r in sorted(rows, key=lambda r: r["eps"])]
    assert accs == sorted(accs, reverse=True)  # a larger budget never breaks fewer samples
