"""The ranked data model of the leaderboards: tidy tables and one Board per (target, suite) built from entries.

Everything here is a pure function of the entries; the Markdown, HTML and plots render these objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd

from ..suites import format_eps
from .entries import DOWNSTREAM_COLUMNS, RECON_COLUMNS

# How each target's board shows its headline metric.
BOARD_STYLE = {
    "reconstruction": dict(metric="psnr", label="masked PSNR in dB", scale=1.0, digits=2,
                           title="Reconstruction robustness"),
    "downstream": dict(metric="accuracy", label="accuracy in %", scale=100.0, digits=1,
                       title="Downstream robustness"),
}
DESCRIPTIONS = {
    "reconstruction": "Masked-patch PSNR in dB (higher is better) of the reconstruction against the clean image, "
                      "clean and under each attack (eps in [0, 1] pixel units). Ranked by the mean PSNR under "
                      "attack. The CSV next to this file also has MSE, SSIM and LPIPS on the composite image, PSNR "
                      "of the attacked input and, for BEiT, token agreement.",
    "downstream": "Accuracy in % of the fine-tuned classifier, clean and under each attack (a sample counts only "
                  "if it is correct clean and under the attack). Ranked by the mean robust accuracy.",
}


@dataclass
class BoardRow:
    """One model on one board: its clean value, its value under each cell, and the ranking score."""

    model: str
    n: int
    clean: Optional[float]
    values: list[Optional[float]]
    score: Optional[float]
    complete: bool
    partial_reason: str = ""
    flags: list[str] = field(default_factory=list)
    family: str = ""


@dataclass
class Board:
    """A ranked table: one target, one suite; complete runs are ranked, partial ones listed apart."""

    dataset: str
    target: str
    suite: str
    cells: list[tuple[str, str, float]]
    ranked: list[BoardRow]
    partial: list[BoardRow]

    @property
    def style(self) -> dict[str, Any]:
        return BOARD_STYLE[self.target]

    def fmt(self, v: Optional[float]) -> str:
        return format_value(None if v is None else v * self.style["scale"], self.style["digits"])

    def headers(self) -> list[str]:
        return ["Clean"] + [cell_label(*c) for c in self.cells]


def cell_label(attack: str, norm: str, eps: float) -> str:
    return f"{attack} {norm} {format_eps(eps)}"


def format_value(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def masking_flags(run: dict[str, Any], target: str) -> list[str]:
    """What the gradient-masking checks of a run raised for one target (see docs/ENTRIES.md, `gradient_masking`):
    the runner's readable messages for that target, plus any other check named `true` or `{"flagged": true}`."""
    gm = run.get("gradient_masking") or {}
    prefix = f"{target}: "
    flags = [m[len(prefix):] for m in gm.get("flags", []) if isinstance(m, str) and m.startswith(prefix)]
    for name, value in gm.items():
        if name in ("flags", "suspected", "reconstruction", "downstream"):
            continue
        if value is True or (isinstance(value, dict) and value.get("flagged") is True):
            flags.append(name)
    return sorted(flags)


def tidy_frames(entries: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every row of every entry as the two tidy tables of DESIGN.md, in a fixed order."""
    recon, down = [], []
    for e in entries:
        for run in e["runs"].values():
            recon += run["reconstruction"]
            down += run["downstream"]
    order = ["model", "suite", "attack", "norm", "eps"]
    rf = pd.DataFrame(recon, columns=RECON_COLUMNS).sort_values(order, kind="stable").reset_index(drop=True)
    df = pd.DataFrame(down, columns=DOWNSTREAM_COLUMNS).sort_values(order, kind="stable").reset_index(drop=True)
    return rf, df


def build_boards(entries: list[dict[str, Any]], dataset: str) -> list[Board]:
    """The ranked boards of a dataset: one per (target, suite) that has rows, targets in a fixed order."""
    boards = []
    for target in ("reconstruction", "downstream"):
        metric = BOARD_STYLE[target]["metric"]
        suites = sorted({s for e in entries for s, r in e["runs"].items() if r[target]})
        for suite in suites:
            runs = [(e, e["runs"][suite]) for e in entries if suite in e["runs"] and e["runs"][suite][target]]
            cells = sorted({(r["attack"], r["norm"], float(r["eps"])) for _, run in runs for r in run[target]
                            if r["attack"] != "none"})
            ranked, partial = [], []
            for e, run in runs:
                by_cell = {(r["attack"], r["norm"], float(r["eps"])): r[metric] for r in run[target]}
                clean = next((r[metric] for r in run[target] if r["attack"] == "none"), None)
                values = [by_cell.get(c) for c in cells]
                numeric = [v for v in values if v is not None and math.isfinite(v)]
                row = BoardRow(e["model"], int(run["settings"]["n"]), clean, values,
                               sum(numeric) / len(numeric) if numeric else None, run["complete"],
                               run.get("partial_reason") or "", masking_flags(run, target),
                               e["card"].get("family", ""))
                (ranked if run["complete"] else partial).append(row)
            key = lambda r: (-(r.score if r.score is not None else -math.inf), r.model)  # noqa: E731
            boards.append(Board(dataset, target, suite, cells, sorted(ranked, key=key), sorted(partial, key=key)))
    return boards
