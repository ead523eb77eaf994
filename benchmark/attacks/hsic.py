"""Hilbert-Schmidt Independence Criterion (HSIC) with Gaussian kernels: differentiable, batched, in torch.

HSIC (Gretton et al., 2005) measures the dependence between two paired samples X = (x_1..x_n) and
Y = (y_1..y_n) as the squared Hilbert-Schmidt norm of their cross-covariance operator in two RKHSs. With Gram
matrices K_ij = k(x_i, x_j), L_ij = l(y_i, y_j) and the centring matrix H = I - 11^T / n, the (biased)
empirical estimate used here is

    HSIC(X, Y) = tr(K H L H) / (n - 1)^2.

It is zero in expectation for independent X and Y and grows with their dependence, which makes it a
differentiable surrogate of mutual information: MIMIR (Xu et al.) penalises HSIC between a ViT's latent and its
(adversarial) input during pretraining, and the benchmark's MI-aware adaptive attack adds it to its objective.

Kernels are Gaussian, k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), on the flattened samples (any shape N x ...).
The bandwidth sigma is given, or set by the median heuristic (the median pairwise distance, computed without
gradient so the kernel's scale is a constant of the objective).

Two normalised variants are provided:
- `normalized_hsic`: HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)), in [0, 1] (kernel-alignment / CKA form);
- `normalized_hsic_cca`: tr(Kc (Kc + n eps I)^-1 Lc (Lc + n eps I)^-1) with centred Gram matrices Kc = HKH, the
  normalised cross-covariance of Fukumizu et al. (2008) that the HSIC-bottleneck code MIMIR builds on uses
  (here with the symmetric centring HKH).

Everything is differentiable with respect to both inputs (the median bandwidth excepted, by design). The module
knows nothing of models: the trainer's defenses (zoo/train) and the attacks import it.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

Bandwidth = Optional[Union[float, torch.Tensor]]
_MIN_BANDWIDTH = 1e-2  # floor of the median heuristic (all-equal samples would give 0)


def _flat(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 1:
        return x.unsqueeze(1)
    return x.reshape(x.shape[0], -1)


def pairwise_sq_dists(x: torch.Tensor) -> torch.Tensor:
    """n x n squared Euclidean distances between the rows of the flattened x (exact zeros on the diagonal)."""
    f = _flat(x)
    sq = (f * f).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * f @ f.T
    d = d.clamp_min(0)
    return d * (1 - torch.eye(len(f), dtype=d.dtype, device=d.device))


def median_bandwidth(x: torch.Tensor, floor: float = _MIN_BANDWIDTH) -> torch.Tensor:
    """The median heuristic: the median distance between distinct samples (no gradient), at least `floor`."""
    with torch.no_grad():
        d = pairwise_sq_dists(x.detach())
        n = d.shape[0]
        if n < 2:
            return torch.tensor(1.0, dtype=d.dtype, device=d.device)
        iu = torch.triu_indices(n, n, offset=1, device=d.device)
        return d[iu[0], iu[1]].sqrt().median().clamp_min(floor)


def gaussian_gram(x: torch.Tensor, sigma: Bandwidth = None) -> torch.Tensor:
    """K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2)); sigma None = median heuristic."""
    if sigma is None:
        sigma = median_bandwidth(x)
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return torch.exp(-pairwise_sq_dists(x) / (2 * sigma ** 2))


def _centre(k: torch.Tensor) -> torch.Tensor:
    """H K H: subtract row and column means, add back the grand mean."""
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def hsic_from_grams(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimate tr(K H L H) / (n - 1)^2 from two n x n Gram matrices (0 for n < 2)."""
    n = k.shape[0]
    if n < 2:
        return k.new_zeros(())
    return (_centre(k) * _centre(l)).sum() / (n - 1) ** 2  # tr(A B) = sum(A * B^T), B symmetric


def hsic(x: torch.Tensor, y: torch.Tensor, sigma_x: Bandwidth = None, sigma_y: Bandwidth = None) -> torch.Tensor:
    """Biased empirical HSIC between paired samples x (N x ...) and y (N x ...) with Gaussian kernels."""
    _check_pair(x, y)
    return hsic_from_grams(gaussian_gram(x, sigma_x), gaussian_gram(y, sigma_y))


def normalized_hsic(x: torch.Tensor, y: torch.Tensor, sigma_x: Bandwidth = None, sigma_y: Bandwidth = None,
                    eps: float = 1e-12) -> torch.Tensor:
    """HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)): scale-free, in [0, 1], 1 for identical samples."""
    _check_pair(x, y)
    k, l = gaussian_gram(x, sigma_x), gaussian_gram(y, sigma_y)
    kc, lc = _centre(k), _centre(l)
    return (kc * lc).sum() / ((kc * kc).sum() * (lc * lc).sum()).clamp_min(eps).sqrt()


def normalized_hsic_cca(x: torch.Tensor, y: torch.Tensor, sigma_x: Bandwidth = None, sigma_y: Bandwidth = None,
                        eps: float = 1e-5) -> torch.Tensor:
    """tr(Kc (Kc + n eps I)^-1 Lc (Lc + n eps I)^-1): the regularised normalised cross-covariance (HSIC-CCA)."""
    _check_pair(x, y)
    n = x.shape[0]
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    kc, lc = _centre(gaussian_gram(x, sigma_x)), _centre(gaussian_gram(y, sigma_y))
    rx = torch.linalg.solve(kc + n * eps * eye, kc)  # (Kc + n eps I)^-1 Kc = Kc (Kc + n eps I)^-1 (they commute)
    ry = torch.linalg.solve(lc + n * eps * eye, lc)
    return (rx * ry.T).sum()


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"HSIC needs paired samples: {x.shape[0]} vs {y.shape[0]}")


__all__ = ["gaussian_gram", "hsic", "hsic_from_grams", "median_bandwidth", "normalized_hsic",
           "normalized_hsic_cca", "pairwise_sq_dists"]
