"""What each defense adds over its control, measured on the same samples: paired differences with 95% intervals.

Every defended variant of a zoo gets the same adversarial fine-tuning as its control (the MIM weights of the
baseline, fine-tuned the same way), so the difference between a variant and the control on the ranked suite is
what the MIM-side defense adds. Both entries keep per-sample outcomes of the same sample ids, so the differences
are paired: for accuracies, the share of samples only the variant gets right minus the share only the control
gets right, with the Wald interval of a paired difference; for masked PSNR, the mean per-sample difference with
its normal interval. An interval that excludes 0 says the difference is real at the 95% level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..stats import Z95, mean_interval
from ..suites import RANKED_SUITE, row_label
from .boards import reference_budget
from .outcomes import decoded

# The control of each dataset's zoo: the baseline's MIM weights with the shared adversarial fine-tuning only.
CONTROLS = {"fashion_mnist": "mae_vit_t_fmnist_advft"}

__all__ = ["CONTROLS", "Effect", "defense_effects", "paired_accuracy_difference"]


@dataclass
class Effect:
    """One variant against its control at the reference budget: (difference, (low, high)) per quantity."""

    model: str
    defenses: list[str]
    n: int
    clean: tuple[float, tuple[float, float]]
    robust: tuple[float, tuple[float, float]]
    psnr: Optional[tuple[float, tuple[float, float]]]
    values: dict[str, Optional[float]]       # the variant's own clean, robust and psnr values
    same_mim: bool = False                   # the variant's MIM checkpoint is the control's (no MIM-side defense)


def paired_accuracy_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """mean(a) - mean(b) for paired 0/1 outcomes, with its 95% Wald interval (b + c discordant pairs)."""
    n = len(a)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    d = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    return d, (d - Z95 * se, d + Z95 * se)


def _worst(run: dict[str, Any], target: str, budget: tuple[str, float]) -> Optional[np.ndarray]:
    arrays = decoded(run).get(target)
    if arrays is None:
        return None
    labels = [row_label(r["attack"], r["norm"], r["eps"]) for r in run[target]
              if r["attack"] != "none" and (r["norm"], float(r["eps"])) == budget]
    if not labels:
        return None
    if target == "downstream":
        return arrays["clean"] & np.logical_and.reduce([arrays[label] for label in labels])
    return np.fmin.reduce([arrays[label] for label in labels])


def defense_effects(entries: list[dict[str, Any]], dataset: str, suite: str = RANKED_SUITE) -> list[Effect]:
    """Each complete run of `suite` against the dataset's control, at the dataset's reference budget."""
    control_name = CONTROLS.get(dataset)
    by_name = {e["model"]: e for e in entries}
    control = by_name.get(control_name, {}).get("runs", {}).get(suite) if control_name else None
    if control is None or "outcomes" not in control or not control["complete"]:
        return []
    budgets = sorted({(r["norm"], float(r["eps"])) for r in control["downstream"] if r["attack"] != "none"})
    budget = reference_budget(dataset, budgets)
    c_clean = decoded(control)["downstream"]["clean"]
    c_robust = _worst(control, "downstream", budget)
    c_psnr = _worst(control, "reconstruction", budget)
    c_mim = by_name[control_name]["checkpoints"].get("mim", {}).get("sha256")
    out = []
    for e in sorted(entries, key=lambda e: e["model"]):
        run = e["runs"].get(suite)
        if e["model"] == control_name or run is None or "outcomes" not in run or not run["complete"]:
            continue
        if run["outcomes"]["n"] != control["outcomes"]["n"]:
            continue
        clean = decoded(run)["downstream"]["clean"]
        robust = _worst(run, "downstream", budget)
        psnr = _worst(run, "reconstruction", budget)
        psnr_effect = None
        if psnr is not None and c_psnr is not None:
            diff = psnr - c_psnr
            stats = mean_interval(diff[np.isfinite(diff)].tolist())
            psnr_effect = None if stats is None else (stats[0], (stats[1], stats[2]))
        out.append(Effect(e["model"], list(e["card"].get("defenses") or []), len(clean),
                          paired_accuracy_difference(clean, c_clean), paired_accuracy_difference(robust, c_robust),
                          psnr_effect, {"clean": float(clean.mean()), "robust": float(robust.mean()),
                                        "psnr": None if psnr is None else float(np.nanmean(psnr))},
                          same_mim=c_mim is not None and e["checkpoints"].get("mim", {}).get("sha256") == c_mim))
    return out
