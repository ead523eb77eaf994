"""Per-sample outcomes in an entry, and the per-budget worst case computed from them (docs/ENTRIES.md).

A run keeps, for the first n sample ids of the evaluation order:
- downstream: one bitset per row: clean correctness, and per attack row the samples still robust (correct clean
  and under the attack; in a cascade suite, under it and every attack before it);
- reconstruction: per row the masked PSNR of every sample in centi-dB (an unsigned 16-bit integer: 1712 is
  17.12 dB; missing values are 65535), so a mean over samples is exact to 0.005 dB.
Both are base64 strings (bitsets little-endian, bit i = sample i). From them anyone recomputes every ranked
number of the boards: the worst case of a budget is, per sample, robust only if robust under every attack row of
that budget (downstream), the lowest PSNR over those rows (reconstruction); means and 95% intervals follow.
"""
from __future__ import annotations

import base64
import math
from typing import Any, Optional, Sequence

import numpy as np

from ..stats import mean_interval, wilson_interval
from ..suites import row_label

MISSING_CENTI = 65535
PSNR_TOLERANCE_DB = 0.005 + 1e-9   # a row's exact mean PSNR vs the mean of its centi-dB values
VERSION = 1

__all__ = ["OutcomeError", "add_exact_worst", "build_outcomes", "check_outcomes", "decode_bits", "decode_centi", "encode_bits",
           "encode_centi", "worst_case"]


class OutcomeError(ValueError):
    """Per-sample outcomes that are malformed or disagree with the run's aggregates; the message names the cell."""


def encode_bits(flags: Sequence[Any]) -> str:
    bits = np.packbits(np.asarray([bool(v) for v in flags], dtype=bool), bitorder="little")
    return base64.b64encode(bits.tobytes()).decode("ascii")


def decode_bits(text: str, n: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=np.uint8)
    if len(raw) != (n + 7) // 8:
        raise OutcomeError(f"a bitset of {len(raw)} bytes for {n} samples")
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def encode_centi(values: Sequence[Optional[float]]) -> str:
    out = np.array([MISSING_CENTI if v is None or not math.isfinite(v) else min(max(round(v * 100), 0),
                                                                                 MISSING_CENTI - 1)
                    for v in values], dtype="<u2")
    return base64.b64encode(out.tobytes()).decode("ascii")


def decode_centi(text: str, n: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype="<u2")
    if len(raw) != n:
        raise OutcomeError(f"{len(raw)} centi-dB values for {n} samples")
    out = raw.astype(np.float64) / 100
    out[raw == MISSING_CENTI] = np.nan
    return out


def build_outcomes(per_sample: dict[str, dict[str, dict[str, list]]], n: int) -> dict[str, Any]:
    """The entry's `outcomes` block from a run's per-sample values (benchmark.runner.RunResult.per_sample)."""
    block: dict[str, Any] = {"version": VERSION, "n": n}
    if "downstream" in per_sample:
        block["downstream"] = {label: encode_bits(v["correct"]) for label, v in per_sample["downstream"].items()}
    recon = per_sample.get("reconstruction", {})
    if recon and any(v is not None for vals in recon.values() for v in vals["psnr"]):
        block["reconstruction"] = {"metric": "psnr", "unit": "centi-dB",
                                   "rows": {label: encode_centi(v["psnr"]) for label, v in recon.items()}}
    return block


def _budgets(rows: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    out: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        if r["attack"] != "none":
            out.setdefault((r["norm"], float(r["eps"])), []).append(r)
    return dict(sorted(out.items()))


def decoded(run: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """The run's per-sample outcomes as arrays per target and row label (OutcomeError when malformed)."""
    block = run.get("outcomes")
    if not isinstance(block, dict) or not isinstance(block.get("n"), int):
        raise OutcomeError("'outcomes' must be an object with the sample count 'n'")
    n = block["n"]
    out: dict[str, dict[str, np.ndarray]] = {}
    if "downstream" in block:
        out["downstream"] = {label: decode_bits(text, n) for label, text in block["downstream"].items()}
    if "reconstruction" in block:
        out["reconstruction"] = {label: decode_centi(text, n)
                                 for label, text in block["reconstruction"]["rows"].items()}
    return out


def worst_case(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per target and budget, the per-sample worst case over the budget's attack rows, from the outcomes alone:
    downstream robust accuracy with its Wilson interval, reconstruction mean masked PSNR with its interval.
    Also the clean values (budget 'none'), so every ranked number of a board comes from here."""
    arrays = decoded(run)
    out: dict[str, list[dict[str, Any]]] = {}
    if "downstream" in arrays:
        rows, bits = run["downstream"], arrays["downstream"]
        clean = bits["clean"]
        k = int(clean.sum())
        lo, hi = wilson_interval(k, len(clean))
        items = [{"norm": "none", "eps": 0.0, "attacks": [], "n": len(clean), "robust": k,
                  "accuracy": k / len(clean), "interval": [round(lo, 6), round(hi, 6)]}]
        for (norm, eps), members in _budgets(rows).items():
            robust = clean.copy()
            for r in members:
                robust &= bits[row_label(r["attack"], r["norm"], r["eps"])]
            k = int(robust.sum())
            lo, hi = wilson_interval(k, len(robust))
            items.append({"norm": norm, "eps": eps, "attacks": [r["attack"] for r in members], "n": len(robust),
                          "robust": k, "accuracy": k / len(robust), "interval": [round(lo, 6), round(hi, 6)]})
        out["downstream"] = items
    if "reconstruction" in arrays:
        rows, psnr = run["reconstruction"], arrays["reconstruction"]
        items = []
        for (norm, eps), members in [(("none", 0.0), [None])] + list(_budgets(rows).items()):
            if members == [None]:
                worst = psnr["clean"]
                attacks: list[str] = []
            else:
                worst = np.fmin.reduce([psnr[row_label(r["attack"], r["norm"], r["eps"])] for r in members])
                attacks = [r["attack"] for r in members]
            stats = mean_interval(worst[np.isfinite(worst)].tolist())
            items.append({"norm": norm, "eps": eps, "attacks": attacks, "n": int(np.isfinite(worst).sum()),
                          "psnr": None if stats is None else stats[0],
                          "interval": None if stats is None else [round(stats[1], 6), round(stats[2], 6)]})
        out["reconstruction"] = items
    return out


def add_exact_worst(wc: dict[str, list[dict[str, Any]]], per_sample: dict[str, dict[str, dict[str, list]]],
                    rows: list[dict[str, Any]], metrics: Sequence[tuple[str, bool]] = (("ssim", False), ("mse", True))
                    ) -> None:
    """Add to the reconstruction worst case the mean per-sample worst SSIM (lowest) and MSE (highest) over each
    budget's rows, from the run's exact values (the entry keeps only PSNR per sample, so these two are recorded,
    not recomputable)."""
    recon = per_sample.get("reconstruction", {})
    budgets = _budgets(rows)
    for item in wc.get("reconstruction", []):
        key = (item["norm"], float(item["eps"]))
        labels = ["clean"] if key == ("none", 0.0) else [row_label(r["attack"], r["norm"], r["eps"])
                                                           for r in budgets.get(key, [])]
        for metric, higher_worse in metrics:
            columns = [recon[label][metric] for label in labels if label in recon]
            worst = [None if any(v is None for v in vals) else (max(vals) if higher_worse else min(vals))
                     for vals in zip(*columns)] if columns else []
            vals = [v for v in worst if v is not None and math.isfinite(v)]
            item[metric] = math.fsum(vals) / len(vals) if vals else None


def _close(a: Optional[float], b: Optional[float], tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def check_outcomes(run: dict[str, Any]) -> None:
    """Refuse (OutcomeError naming the cell) outcomes that are malformed or disagree with the run's rows or its
    stored worst case: every aggregate of an entry must be recomputable from its per-sample outcomes."""
    arrays = decoded(run)
    n = run["outcomes"]["n"]
    if n != run["settings"]["n"]:
        raise OutcomeError(f"outcomes for {n} samples, the run has n={run['settings']['n']}")
    for target, metric, tol in (("downstream", "accuracy", 1e-9), ("reconstruction", "psnr", PSNR_TOLERANCE_DB)):
        rows = run.get(target) or []
        have = arrays.get(target, {})
        for r in rows:
            label = row_label(r["attack"], r["norm"], r["eps"])
            if target == "reconstruction" and r["psnr"] is None and label not in have:
                continue
            if label not in have:
                raise OutcomeError(f"cell '{label}' ({target}) has no per-sample outcomes")
            values = have[label]
            recomputed = float(values.mean()) if target == "downstream" else (
                float(np.nanmean(values)) if np.isfinite(values).any() else None)
            if not _close(r[metric], recomputed, tol):
                raise OutcomeError(f"cell '{label}' ({target}): {metric} {r[metric]} disagrees with its per-sample "
                                   f"outcomes ({recomputed})")
        extra = set(have) - {row_label(r["attack"], r["norm"], r["eps"]) for r in rows}
        if extra:
            raise OutcomeError(f"per-sample outcomes of {sorted(extra)} ({target}) belong to no row")
    stored = run.get("worst_case")
    if not isinstance(stored, dict):
        raise OutcomeError("per-sample outcomes without their 'worst_case'")
    if True:
        fresh = worst_case(run)
        for target, items in fresh.items():
            old = {(i["norm"], float(i["eps"])): i for i in stored.get(target, [])}
            for item in items:
                key = (item["norm"], float(item["eps"]))
                metric = "accuracy" if target == "downstream" else "psnr"
                if key not in old or not _close(old[key].get(metric), item[metric], 1e-9):
                    raise OutcomeError(f"worst case at {key[0]} eps {key[1]:g} ({target}): {metric} "
                                       f"{old.get(key, {}).get(metric)} disagrees with its per-sample outcomes "
                                       f"({item[metric]})")
