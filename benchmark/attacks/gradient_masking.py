"""Gradient-masking checks in the spirit of AutoAttack's (Croce & Hein, 2020, flags_doc): per run, per target.

A robustness number from gradient attacks is only as good as the gradients. Three symptoms are checked:
- zero gradients: samples whose loss gradient with respect to the input is exactly zero at the clean input
  (the attacks cannot move them);
- a randomised forward pass: two forward passes of the same input differ (the attacks then optimise a moving
  target; such a model needs EoT, AutoAttack's 'rand' version);
- a black-box attack succeeding where the whole white-box ensemble failed, on a share of samples too large for
  healthy gradients: downstream, Square (score-based) breaks samples that survived every white-box attack of the
  budget; reconstruction, random noise in the ball degrades a sample's reconstruction more than the strongest
  white-box attack of the budget. On a model whose gradients work, the white-box ensemble finds nearly all that
  a query attack finds (AutoAttack's Square adds well under a point of robust accuracy after APGD on healthy
  models), so the check fires only when the 95% Wilson lower bound of that share exceeds BLACK_BOX_SHARE: a
  few stray successes are expected and counted (the worst case includes them), not a sign of broken gradients.
  That holds for a strong white-box ensemble (an APGD attack among it, as in the `standard` suite). Against
  PGD-20 alone (the `pgd` suite) Square also finds what a fixed-step attack misses on healthy adversarially
  trained models (measured: 4 of 11 PGD-20 survivors at Linf 0.2 on the FGSM-RS zoo, none of whose 26 APGD
  survivors Square breaks), so there the share must exceed WEAK_REFERENCE_SHARE: gradient masking, where Square
  breaks most of what the gradients leave standing, still fires.
  Square runs only where the budget has a budget-constrained iterative white-box attack (BIM, PGD, adaptive
  PGD with at least MIN_WHITEBOX_STEPS steps): FGSM and CW are expected to lose to Square, so a budget with only
  those is skipped, not flagged. The survivors Square attacks are those of every white-box attack of the budget,
  among the first SQUARE_SAMPLES samples of the evaluation order.
The runner computes the per-sample records (batch by batch, through its store) and `summarise_*` turns them
into the entry's `gradient_masking` block: counts, the numbers compared, and a boolean `flag` per check.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..stats import wilson_interval

SQUARE_QUERIES = 1000   # queries per sample of the black-box check (AutoAttack standard uses 5000 inside AA)
BLACK_BOX_SHARE = 0.10  # flag when the black-box attack wins on a share whose Wilson lower bound exceeds this
# Square costs about SQUARE_QUERIES forward passes per surviving sample (50x a PGD-20), so it checks the first
# SQUARE_SAMPLES samples of the evaluation order (whole batches), a fixed subset whatever n is: a check of the
# gradients, not a robustness number. The cheap checks (zero gradients, randomness, noise) cover every sample.
SQUARE_SAMPLES = 200
WEAK_REFERENCE_SHARE = 0.50  # the same rule against a white-box ensemble without any STRONG_WHITEBOX attack
STRONG_WHITEBOX = ("apgd_ce", "apgd_t", "autoattack")   # step-size-free attacks: Square rarely beats them honestly
MIN_WHITEBOX_STEPS = 10  # Square is compared only with iterative white-box attacks (beating FGSM proves nothing)
# Budget-constrained ascent attacks: the references Square is compared with. CW is a minimum-norm attack without
# a search over c (it gives up on hard samples), so losing to Square says nothing about the gradients either.
REFERENCE_ATTACKS = ("bim", "pgd", "feature_pgd", "mi_pgd")
NOISE_SAMPLES = 8       # random points of the ball per image for the reconstruction black-box check
RANDOM_ATOL, RANDOM_RTOL = 1e-6, 1e-5


def zero_gradient(loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per sample: is the gradient of loss_fn (per-sample losses) with respect to the input exactly zero?"""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(x)
        grad, = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    if grad is None:
        return torch.ones(len(x), dtype=torch.bool, device=x.device)
    return grad.flatten(1).abs().sum(1) == 0


def randomized(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per sample: do two forward passes of the same input give different outputs?"""
    with torch.no_grad():
        a, b = fn(x), fn(x)
    close = torch.isclose(a, b, atol=RANDOM_ATOL, rtol=RANDOM_RTOL)
    return ~close.flatten(1).all(1)


def _count(records: list[dict], key: str) -> tuple[int, int]:
    vals = [bool(v) for r in records for v in r[key]]
    return sum(vals), len(vals)


def summarise_basic(records: list[dict]) -> dict:
    """{'zero_gradient': {...}, 'randomized_forward': {...}} from per-batch records of the two basic checks."""
    out = {}
    for key, what in (("zero_gradient", "samples with an all-zero input gradient at the clean input"),
                      ("randomized_forward", "samples whose two forward passes differ")):
        k, n = _count(records, key)
        out[key] = {"count": k, "n": n, "flag": k > 0, "what": what}
    return out


def square_threshold(whitebox: list[str]) -> float:
    """The share above which Square's wins over this white-box ensemble count as evidence of broken gradients."""
    return BLACK_BOX_SHARE if set(whitebox) & set(STRONG_WHITEBOX) else WEAK_REFERENCE_SHARE


def summarise_square(norm: str, eps: float, whitebox: list[str], records: list[dict],
                     n_queries: int = SQUARE_QUERIES) -> dict:
    """Downstream black-box check of one budget: survivors of every white-box attack that Square breaks."""
    survivors, _ = _count(records, "whitebox_robust")
    broken, _ = _count(records, "square_broken")
    n = sum(len(r["sample_id"]) for r in records)
    low = wilson_interval(broken, survivors)[0] if survivors else 0.0
    return {"attack": "square", "norm": norm, "eps": float(eps), "n_queries": n_queries, "whitebox": whitebox,
            "n": n, "whitebox_robust": survivors, "broken_only_by_black_box": broken,
            "share_lower_bound": round(low, 4), "flag": broken > 0 and low > square_threshold(whitebox)}


def is_reference(impl: str, steps: int) -> bool:
    """Is this white-box attack a fair reference for the black-box check?"""
    return impl in REFERENCE_ATTACKS and steps >= MIN_WHITEBOX_STEPS


def skipped_square(norm: str, eps: float, whitebox: list[str]) -> dict:
    return {"attack": "square", "norm": norm, "eps": float(eps), "whitebox": whitebox, "flag": False,
            "skipped": f"no budget-constrained iterative white-box attack ({', '.join(REFERENCE_ATTACKS)} with "
                       f">= {MIN_WHITEBOX_STEPS} steps) at this budget to compare with"}


def summarise_noise(norm: str, eps: float, whitebox: list[str], metric: str, higher_is_stronger: bool,
                    whitebox_values: list[Optional[float]], noise_values: list[Optional[float]],
                    samples: int = NOISE_SAMPLES) -> dict:
    """Reconstruction black-box check of one budget: random noise vs the strongest white-box attack, per sample."""
    pairs = [(w, b) for w, b in zip(whitebox_values, noise_values) if w is not None and b is not None]
    sign = 1.0 if higher_is_stronger else -1.0
    wb = sum(w for w, _ in pairs) / len(pairs) if pairs else None
    bb = sum(b for _, b in pairs) / len(pairs) if pairs else None
    stronger = sum(1 for w, b in pairs if sign * (b - w) > 0)
    low = wilson_interval(stronger, len(pairs))[0] if pairs else 0.0
    flag = stronger > 0 and low > BLACK_BOX_SHARE
    return {"attack": "random_noise", "norm": norm, "eps": float(eps), "samples": samples, "whitebox": whitebox,
            "metric": metric, "n": len(pairs), "whitebox_mean": wb, "black_box_mean": bb,
            "samples_black_box_stronger": stronger, "share_lower_bound": round(low, 4), "flag": flag}


def current_flags(block: dict) -> dict:
    """A target's block with every flag decided by this version's rules from its counts (entries written before
    the Wilson rule flagged any black-box success; their counts are kept, so the rule can be applied to them)."""
    out = dict(block)
    for key in ("zero_gradient", "randomized_forward"):
        if isinstance(out.get(key), dict):
            out[key] = {**out[key], "flag": out[key].get("count", 0) > 0}
    boxes = []
    for b in out.get("black_box", []):
        b = dict(b)
        if b.get("skipped"):
            b["flag"] = False
        elif b.get("attack") == "square" and "whitebox_robust" in b:
            k, n = b.get("broken_only_by_black_box", 0), b["whitebox_robust"]
            b["share_lower_bound"] = round(wilson_interval(k, n)[0], 4) if n else 0.0
            b["flag"] = k > 0 and b["share_lower_bound"] > square_threshold(b.get("whitebox", []))
        elif b.get("attack") == "random_noise" and "samples_black_box_stronger" in b:
            k, n = b["samples_black_box_stronger"], b.get("n", 0)
            b["share_lower_bound"] = round(wilson_interval(k, n)[0], 4) if n else 0.0
            b["flag"] = k > 0 and b["share_lower_bound"] > BLACK_BOX_SHARE
        boxes.append(b)
    out["black_box"] = boxes
    return out


def flag_messages(target: str, block: dict) -> list[str]:
    """Readable lines for the raised flags of one target's block."""
    lines = []
    for key in ("zero_gradient", "randomized_forward"):
        b = block.get(key)
        if b and b["flag"]:
            lines.append(f"{target}: {b['count']}/{b['n']} {b['what']}")
    for b in block.get("black_box", []):
        if not b.get("flag"):
            continue
        if b["attack"] == "square":
            lines.append(f"{target}: Square broke {b['broken_only_by_black_box']} of the {b['whitebox_robust']} "
                         f"samples that survived every white-box attack at {b['norm']} eps {b['eps']:g} (95% lower "
                         f"bound of the share {b['share_lower_bound']:.2f} > "
                         f"{square_threshold(b.get('whitebox', [])):.2f})")
        else:
            lines.append(f"{target}: random noise beat every white-box attack on {b['samples_black_box_stronger']} of "
                         f"{b['n']} samples at {b['norm']} eps {b['eps']:g} (95% lower bound of the share "
                         f"{b['share_lower_bound']:.2f} > {BLACK_BOX_SHARE:.2f})")
    return lines
