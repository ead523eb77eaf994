"""Suites: every matrix is complete, the pgd suite is frozen, each cell has an implementation, listing is readable."""
from __future__ import annotations

import pytest

from benchmark.attacks import DOWNSTREAM_ATTACKS, RECONSTRUCTION_ATTACKS
from benchmark.suites import L2_EPS, LINF_EPS, TARGETS, Cell, describe, format_eps, get_suite, list_suites

SUITES = ("fgsm", "bim", "pgd", "pgd_l2", "threat", "cw", "autoattack", "adaptive", "full")


def test_every_suite_is_registered():
    assert set(SUITES) <= set(list_suites())
    with pytest.raises(KeyError, match="unknown suite"):
        get_suite("nope")


@pytest.mark.parametrize("dataset", sorted(LINF_EPS))
@pytest.mark.parametrize("name", SUITES)
def test_matrix_is_complete_and_implemented(name, dataset):
    cells = get_suite(name).cells(dataset)
    assert {c.target for c in cells} == set(TARGETS), "every suite fills both tables"
    assert len({c.key() for c in cells}) == len(cells), "no cell twice"
    rows = {(c.target, c.attack, c.norm, c.eps) for c in cells}
    assert len(rows) == len(cells), "one row per (target, attack, norm, eps)"
    for c in cells:
        grid = LINF_EPS[dataset] if c.norm == "Linf" else L2_EPS[dataset]
        assert c.eps in grid
        registry = RECONSTRUCTION_ATTACKS if c.target == "reconstruction" else DOWNSTREAM_ATTACKS
        assert c.impl in registry, f"{c.target} {c.impl} has no implementation"
    # each attack covers its whole grid
    by_attack: dict = {}
    for c in cells:
        by_attack.setdefault((c.target, c.attack, c.norm), set()).add(c.eps)
    for (target, attack, norm), eps in by_attack.items():
        assert eps == set(LINF_EPS[dataset] if norm == "Linf" else L2_EPS[dataset]), (target, attack, norm)


def test_pgd_suite_is_frozen():
    """Leaderboard rows depend on it: Linf PGD-20, step 2.5*eps/20, random start, both targets, aware, all pixels."""
    for dataset, grid in LINF_EPS.items():
        cells = get_suite("pgd").cells(dataset)
        expected = [Cell(t, "pgd", "Linf", e, steps=20, alpha=2.5 * e / 20, random_start=True)
                    for t in TARGETS for e in grid]
        assert cells == expected
        assert [c.key() for c in cells] == [c.key() for c in expected]


def test_full_is_the_union_of_the_others():
    for dataset in LINF_EPS:
        full = {c.key() for c in get_suite("full").cells(dataset)}
        parts = {c.key() for n in SUITES if n != "full" for c in get_suite(n).cells(dataset)}
        assert full == parts


def test_threat_variants_side_by_side():
    cells = get_suite("threat").cells("fashion_mnist", "reconstruction")
    labels = {c.attack: c for c in cells}
    assert set(labels) == {"pgd", "pgd_agnostic", "pgd_visible", "pgd_masked"}
    assert labels["pgd_agnostic"].threat == "agnostic" and labels["pgd_agnostic"].eot_samples == 8
    assert labels["pgd_masked"].scope == "masked" and labels["pgd_visible"].scope == "visible"
    # the same optimiser as the pgd suite, so only the threat model differs
    assert {(c.steps, c.alpha / c.eps, c.random_start) for c in cells} == {(20, 2.5 / 20, True)}


def test_target_filter_and_unknown_dataset():
    assert all(c.target == "downstream" for c in get_suite("full").cells("cifar10", "downstream"))
    with pytest.raises(KeyError, match="no matrix"):
        get_suite("pgd").cells("mnist")


def test_listing_is_readable():
    from benchmark.cli import _list_suites
    text = _list_suites()
    for name in SUITES:
        assert f"\n{name}: " in "\n" + text
    assert "eps 2/255, 4/255, 8/255" in text and "eps 0.5, 1, 2" in text
    block = describe(get_suite("bim"), "fashion_mnist")
    assert "10 steps of eps/4" in block and "mask-agnostic (EoT over 8 masks)" in block
    assert "20 steps of eps/8, random start" in describe(get_suite("pgd"), "imagenet")
    assert "broken only within eps" in describe(get_suite("cw"), "cifar10")
    assert format_eps(8 / 255) == "8/255" and format_eps(0.05) == "0.05"


@pytest.mark.parametrize("target", TARGETS)
def test_every_attack_refuses_an_unknown_keyword(target):
    """A misspelt setting is an error, never silently dropped (cell params reach the constructor as keywords)."""
    from dataclasses import replace

    from benchmark.attacks import attack_registry, build_attack

    from .helpers import tiny_classifier, tiny_mae
    model = tiny_mae() if target == "reconstruction" else tiny_classifier()
    registry = attack_registry(target)
    assert len(registry) >= 7
    for name, cls in registry.items():
        norm = "L2" if name == "cw" else "Linf"
        with pytest.raises(TypeError, match="stepz"):
            cls(model, 0.1, norm=norm, stepz=3)
        cell = Cell(target, name, norm, 0.1, steps=2, alpha=0.01, params=(("stepz", 3),))
        with pytest.raises(TypeError, match="stepz"):
            build_attack(model, replace(cell), seed=0)
