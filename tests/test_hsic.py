"""HSIC (benchmark.attacks.hsic): hand-computed values, the median heuristic, normalisation, gradients."""
from __future__ import annotations

import math

import pytest
import torch

from benchmark.attacks.hsic import (
    gaussian_gram,
    hsic,
    median_bandwidth,
    normalized_hsic,
    normalized_hsic_cca,
    pairwise_sq_dists,
)


def _hsic_by_hand(xs: list[float], ys: list[float], sx: float, sy: float) -> float:
    """tr(K H L H) / (n-1)^2 with explicit loops (an independent implementation)."""
    n = len(xs)
    k = [[math.exp(-(a - b) ** 2 / (2 * sx ** 2)) for b in xs] for a in xs]
    l = [[math.exp(-(a - b) ** 2 / (2 * sy ** 2)) for b in ys] for a in ys]
    h = [[(1.0 if i == j else 0.0) - 1.0 / n for j in range(n)] for i in range(n)]

    def mm(a, b):
        return [[sum(a[i][t] * b[t][j] for t in range(n)) for j in range(n)] for i in range(n)]
    m = mm(mm(mm(k, h), l), h)
    return sum(m[i][i] for i in range(n)) / (n - 1) ** 2


def test_two_points_closed_form():
    # n = 2: HKH = (1 - k)/2 [[1, -1], [-1, 1]], so HSIC = (1 - k)(1 - l) with k = e^{-1/2}, l = e^{-2}.
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [2.0]])
    expected = (1 - math.exp(-0.5)) * (1 - math.exp(-2.0))
    assert hsic(x, y, 1.0, 1.0).item() == pytest.approx(expected, rel=1e-6)
    assert normalized_hsic(x, y, 1.0, 1.0).item() == pytest.approx(1.0, rel=1e-6)  # rank one: fully aligned


def test_matches_explicit_trace_formula():
    xs, ys = [0.0, 1.0, 3.0, 3.5], [1.0, -1.0, 0.5, 2.0]
    x, y = torch.tensor(xs).unsqueeze(1), torch.tensor(ys).unsqueeze(1)
    got = hsic(x, y, 1.5, 0.7).item()
    assert got == pytest.approx(_hsic_by_hand(xs, ys, 1.5, 0.7), rel=1e-5)
    norm = normalized_hsic(x, y, 1.5, 0.7).item()
    ref = _hsic_by_hand(xs, ys, 1.5, 0.7) / math.sqrt(_hsic_by_hand(xs, xs, 1.5, 1.5) * _hsic_by_hand(ys, ys, 0.7, 0.7))
    assert norm == pytest.approx(ref, rel=1e-5)


def test_median_heuristic_and_gram():
    x = torch.tensor([[0.0], [1.0], [3.0]])          # distances 1, 2, 3 -> median 2
    assert median_bandwidth(x).item() == pytest.approx(2.0)
    k = gaussian_gram(x)                              # sigma = 2 by the heuristic
    assert k[0, 2].item() == pytest.approx(math.exp(-9 / 8), rel=1e-6)
    torch.testing.assert_close(torch.diagonal(k), torch.ones(3))
    assert pairwise_sq_dists(torch.tensor([[1.0, 2.0], [4.0, 6.0]]))[0, 1].item() == pytest.approx(25.0)


def test_dependence_ordering_and_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 4, 4, generator=g)         # any shape: samples are flattened
    dependent = x.flatten(1)[:, :3] * 2 + 0.01 * torch.randn(64, 3, generator=g)
    independent = torch.randn(64, 3, generator=g)
    assert normalized_hsic(x, dependent) > 2 * normalized_hsic(x, independent)
    assert normalized_hsic(x, x).item() == pytest.approx(1.0, rel=1e-5)
    assert hsic(x, independent) >= 0


def test_cca_variant_closed_form():
    # n = 2: Kc = (1 - k) v v^T with v = (1, -1)/sqrt(2), so the trace is (1-k)(1-l) / ((1-k+2e)(1-l+2e)).
    x, y, e = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]]), 1e-2
    k, l = math.exp(-0.5), math.exp(-2.0)
    expected = (1 - k) * (1 - l) / ((1 - k + 2 * e) * (1 - l + 2 * e))
    assert normalized_hsic_cca(x, y, 1.0, 1.0, eps=e).item() == pytest.approx(expected, rel=1e-5)


def test_differentiable():
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: hsic(a, b, 1.0, 1.3), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: normalized_hsic(a, b, 1.0, 1.3), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: normalized_hsic_cca(a, b, 1.0, 1.3), (x, y))
    with pytest.raises(ValueError):
        hsic(torch.zeros(3, 2), torch.zeros(4, 2))
