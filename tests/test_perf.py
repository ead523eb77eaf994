"""benchmark.perf's comparison is a fair one: the runner and the naive torchattacks loop attack the same samples,
the reconstruction attack is the same (identical numbers) and the runner is never weaker downstream: every
sample the full-length PGD-20 breaks from the same random start, the runner breaks too."""
from __future__ import annotations

from benchmark import perf
from benchmark.attacks import gradient_masking


def test_suite_comparison_is_like_for_like(monkeypatch):
    monkeypatch.setattr(gradient_masking, "SQUARE_QUERIES", 10)  # the checks' cost is not what is compared here
    monkeypatch.setattr(gradient_masking, "NOISE_SAMPLES", 1)
    res = perf.suite_speed(n=10, repeats=1)
    down, recon = res["downstream"], res["reconstruction"]
    assert set(down["runner"]) == set(down["naive"]) == {0.05, 0.1, 0.2}
    assert recon["identical"], (recon["runner"], recon["naive"])
    # paired per sample (same random starts): every sample the full-length PGD-20 breaks, the runner breaks too
    assert down["never_weaker_paired"], down["paired"]
    assert sum(v["broken_by_full_run"] for v in down["paired"].values()) > 0   # the comparison says something
    assert all(v > 0 for v in (res["runner_s"], res["naive_s"], res["runner_with_checks_s"]))
    text = perf._report({"machine": perf.machine(), "model": perf.DEFAULT_MODEL, "suite": res})
    assert "2. pgd suite, n=10" in text and "1. attack step" not in text
