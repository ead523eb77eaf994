"""The ranked `standard` suite: a cascade whose rows are cumulative, a worst case that is its last row, Square's
breaks counted, and robust accuracy no higher than a direct AutoAttack-standard call on the same samples."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import zoo
from benchmark.attacks.downstream import autoattack_backend
from benchmark.leaderboard.outcomes import build_outcomes, worst_case
from benchmark.runner import Runner
from benchmark.suites import get_suite, row_label

from .helpers import StubBundle, dataset_of


def _cheap(cell):
    """The suite's cells with fewer iterations and queries, so the test runs in seconds."""
    p = dict(cell.params)
    if cell.impl == "square":
        p["n_queries"] = 200
    return replace(cell, steps=min(cell.steps, 10) if cell.steps else 0, params=tuple(p.items()))


@pytest.fixture(scope="module")
def defended(fmnist_test):
    bundle = zoo.load_model("mae_vit_t_fmnist_advft")
    return bundle.classifier.eval(), fmnist_test.subset(24)


def test_cascade_rows_are_cumulative_and_the_worst_case_is_the_last_row(defended, one_thread):
    clf, data = defended
    suite = get_suite("standard")
    cells = [_cheap(c) for c in suite.cells("fashion_mnist", "downstream")]
    result = Runner(StubBundle(classifier=clf), dataset_of(data.images, data.labels), suite, cells,
                    model_name="advft", batch_size=12, progress=False).run()
    robust = {label: np.asarray(v["correct"], dtype=bool) for label, v in result.per_sample["downstream"].items()}
    order = [row_label(c.attack, c.norm, c.eps) for c in sorted(cells, key=lambda c: c.eps)]
    previous = robust["clean"]
    for label in order:   # budget by budget, attack by attack: every robust set inside the one before it
        assert not (robust[label] & ~previous).any(), label
        previous = robust[label]
    run = {"settings": {"n": result.n}, "downstream": result.downstream,
           "outcomes": build_outcomes(result.per_sample, result.n)}
    wc = {(i["norm"], i["eps"]): i["accuracy"] for i in worst_case(run)["downstream"]}
    for eps in (0.05, 0.1, 0.2):
        assert wc[("Linf", eps)] == pytest.approx(robust[f"square|Linf|{eps!r}"].mean())
    assert 0 < wc[("Linf", 0.05)] < robust["clean"].mean()


def test_the_committed_board_is_no_higher_than_autoattack_standard_on_the_same_samples(one_thread):
    """The committed `standard` entry of the control against pyautoattack's AutoAttack-standard (APGD-CE, APGD-T,
    FAB-T, Square-5000) run directly on its first 4 samples at the reference budget, per sample, through
    `benchmark.ranking_check` (docs/RANKING.md has the same comparison at n = 100 for the zoo): every sample the
    board calls robust survives AutoAttack too, up to one sample of randomness."""
    from benchmark.ranking_check import compare

    from .helpers import REPO
    res = compare("mae_vit_t_fmnist_advft", REPO / "leaderboards", 4, batch_size=4, budgets=[0.1])
    (b,) = res["budgets"]
    assert b["autoattack_robust"] > 0, "the comparison says something only if some samples survive"
    assert b["missed"] <= b["extra"] + 1, b


def test_ranking_check_runs_autoattack_standard_attack_by_attack_with_the_same_outcome(fmnist_test, one_thread):
    """`benchmark.ranking_check` runs AutoAttack's four attacks one by one on the survivors, to say which one broke
    each sample: the robust flags are those of one `run_standard_evaluation` call (same order, batches, seed)."""
    from benchmark.ranking_check import AA_STANDARD, _autoattack
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)).eval()  # cheap, and some survive
    data = fmnist_test.subset(200)
    with torch.no_grad():
        ok = model(data.images).argmax(1) == data.labels
    x, y = data.images[ok][:12], data.labels[ok][:12]
    robust, broken_by = _autoattack(model, x, y, eps=0.002, seed=0, batch_size=5)
    cls, package = autoattack_backend()
    aa = cls(model, norm="Linf", eps=0.002, version="standard", seed=0, device="cpu") if package == "pyautoattack" \
        else cls(model, norm="Linf", eps=0.002, version="standard", seed=0, verbose=False)
    x_adv = aa.run_standard_evaluation(x, y, batch_size=5) if package == "pyautoattack" \
        else aa.run_standard_evaluation(x, y, bs=5)
    x_adv = x_adv[0] if isinstance(x_adv, tuple) else x_adv
    with torch.no_grad():
        direct = (model(x_adv).argmax(1) == y).numpy()
    assert 0 < robust.sum() < len(x), "some samples must break and some survive for the check to mean anything"
    assert (robust == direct).all(), (robust, direct)
    assert ((broken_by == -1) == robust).all() and broken_by.max() < len(AA_STANDARD)


def test_ranking_check_resumes_after_its_last_finished_stage_with_the_same_outcome(fmnist_test, one_thread, tmp_path):
    """An interrupted `ranking_check` resumes from its `.partial` file: the stages it kept are not run again and the
    result equals an uninterrupted check's; a file of another check (other seed) is ignored."""
    from benchmark.ranking_check import _autoattack, _Progress
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)).eval()
    data = fmnist_test.subset(200)
    with torch.no_grad():
        ok = model(data.images).argmax(1) == data.labels
    x, y = data.images[ok][:12], data.labels[ok][:12]
    path = tmp_path / "check.json.partial"
    kept = _Progress(path, {"n": 12, "seed": 0})
    full = _autoattack(model, x, y, eps=0.002, seed=0, batch_size=5, on_stage=kept.saver(0.002, 0.0))
    assert _Progress(path, {"n": 12, "seed": 1}).get(0.002) is None
    saved = _Progress(path, {"n": 12, "seed": 0}).get(0.002)
    assert saved is not None and saved[0] == 4 and (saved[1] == full[0]).all()
    stages: list[int] = []
    # resume after the first stage only: the rest must give the same flags and attributions
    first = {}
    _autoattack(model, x, y, eps=0.002, seed=0, batch_size=5,
                on_stage=lambda d, r, b: first.setdefault(d, (d, r.copy(), b.copy())))
    resumed = _autoattack(model, x, y, eps=0.002, seed=0, batch_size=5, done=first[1],
                          on_stage=lambda d, r, b: stages.append(d))
    assert stages == [2, 3, 4][:len(stages)] and 1 not in stages
    assert (resumed[0] == full[0]).all() and (resumed[1] == full[1]).all()
