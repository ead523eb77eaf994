"""The ranked data model of the leaderboards: tidy tables and one Board per (target, suite), built from entries.

A board's columns are the budgets of its suite; a model's value at a budget is the per-sample worst case over
every attack row of that budget (`outcomes.worst_case`: a sample is robust only if it survives all of them; the
lowest masked PSNR), with its 95% interval. Models are ranked by the value at the dataset's reference budget
(`suites.REFERENCE_EPS`); a model whose interval overlaps the one above shares its rank. Everything here is a pure
function of the entries; the Markdown, HTML and plots render these objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..attacks import gradient_masking as GM
from ..stats import intervals_overlap, mean_interval, wilson_interval
from ..suites import REFERENCE_EPS, format_eps, row_label
from .entries import DOWNSTREAM_COLUMNS, RECON_COLUMNS
from .outcomes import decoded

# How each target's board shows its headline metric.
BOARD_STYLE = {
    "reconstruction": dict(metric="psnr", label="masked PSNR in dB", scale=1.0, digits=2,
                           title="Reconstruction robustness"),
    "downstream": dict(metric="accuracy", label="accuracy in %", scale=100.0, digits=1,
                       title="Downstream robustness"),
}
DESCRIPTIONS = {
    "reconstruction": "Masked-patch PSNR in dB (higher is better) of the reconstruction against the clean image, "
                      "clean and under attack (eps in [0, 1] pixel units), with its 95% interval. A budget's value "
                      "is the per-sample worst case over every attack of that budget in the run (each image's lowest "
                      "PSNR). Ranked by the value at the reference budget; models whose intervals overlap share a "
                      "rank (=). The CSV next to this file also has MSE, SSIM and LPIPS on the composite image, PSNR "
                      "of the attacked input and, for BEiT, token agreement.",
    "downstream": "Accuracy in % of the fine-tuned classifier, clean and under attack, with its 95% (Wilson) "
                  "interval. A budget's value is the per-sample worst case: a sample counts only if it is correct "
                  "clean and under every attack of that budget in the run. Ranked by the value at the reference "
                  "budget; models whose intervals overlap share a rank (=).",
}
LEGACY_REASON = "recorded before per-sample outcomes (entry schema 1): re-run it to rank"


@dataclass
class Value:
    """A number of a board and its 95% interval (None: not measured)."""

    value: Optional[float] = None
    interval: Optional[tuple[float, float]] = None


@dataclass
class BoardRow:
    """One model on one board: clean and per-budget values, the ranked value and the rank it gets."""

    model: str
    n: int
    clean: Value
    values: list[Value]
    score: Value
    complete: bool
    partial_reason: str = ""
    flags: list[str] = field(default_factory=list)
    family: str = ""
    rank: Optional[int] = None
    tied: bool = False                          # shares the rank of the row above (their intervals overlap)
    first_attack: Optional[Value] = None        # the suite's first attack alone at the reference budget
    details: dict[str, list[Value]] = field(default_factory=dict)   # attack -> value per budget (its own row)

    @property
    def rank_label(self) -> str:
        return "" if self.rank is None else ("=" if self.tied else "") + str(self.rank)


@dataclass
class Board:
    """A ranked table: one target, one suite; complete runs are ranked, partial (or legacy) ones listed apart."""

    dataset: str
    target: str
    suite: str
    budgets: list[tuple[str, float]]
    reference: Optional[tuple[str, float]]
    ranked: list[BoardRow]
    partial: list[BoardRow]
    attacks: list[str] = field(default_factory=list)
    subset: str = ""                            # 'the first N sample ids' when the suite runs on a fixed subset
    cascade: bool = False                       # rows are cumulative (each attack on the survivors of those before)

    @property
    def style(self) -> dict[str, Any]:
        return BOARD_STYLE[self.target]

    def fmt(self, v: Optional[float]) -> str:
        return format_value(None if v is None else v * self.style["scale"], self.style["digits"])

    def fmt_value(self, v: Optional[Value], interval: bool = True) -> str:
        """'83.2 (82.5-83.9)': the value and its interval in the board's unit."""
        if v is None or v.value is None:
            return "–"
        text = self.fmt(v.value)
        if interval and v.interval is not None:
            text += f" ({self.fmt(v.interval[0])}–{self.fmt(v.interval[1])})"
        return text

    def budget_label(self, budget: tuple[str, float]) -> str:
        return f"{budget[0]} {format_eps(budget[1])}"

    def headers(self) -> list[str]:
        return ["Clean"] + [self.budget_label(b) + (" (ranked)" if b == self.reference else "") for b in self.budgets]


def cell_label(attack: str, norm: str, eps: float) -> str:
    return f"{attack} {norm} {format_eps(eps)}"


def format_value(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def masking_flags(run: dict[str, Any], target: str) -> list[str]:
    """The evidence of broken gradients in a run, for one target (see docs/ENTRIES.md, `gradient_masking`): the
    target's checks judged by the current rules (`gradient_masking.current_flags`: runs recorded under older
    rules are re-judged from their counts), plus any other check named `true` or `{"flagged": true}`."""
    gm = run.get("gradient_masking") or {}
    prefix = f"{target}: "
    if isinstance(gm.get(target), dict):
        flags = [m[len(prefix):] for m in GM.flag_messages(target, GM.current_flags(gm[target]))]
    else:
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


def reference_budget(dataset: str, budgets: list[tuple[str, float]]) -> Optional[tuple[str, float]]:
    """The budget a board ranks by: the dataset's Linf reference if the suite has it, else its L2 one, else the
    middle budget of the suite."""
    for norm in ("Linf", "L2"):
        ref = REFERENCE_EPS.get(dataset, {}).get(norm)
        match = next((b for b in budgets if b[0] == norm and ref is not None and math.isclose(b[1], ref)), None)
        if match is not None:
            return match
    return budgets[(len(budgets) - 1) // 2] if budgets else None


def _row_value(target: str, values: np.ndarray) -> Value:
    """One row's mean (or accuracy) with its interval from per-sample values."""
    if target == "downstream":
        k, n = int(values.sum()), len(values)
        return Value(k / n if n else None, wilson_interval(k, n))
    stats = mean_interval(values[np.isfinite(values)].tolist())
    return Value() if stats is None else Value(stats[0], (stats[1], stats[2]))


def _board_row(entry: dict[str, Any], run: dict[str, Any], target: str, budgets: list[tuple[str, float]],
               reference: Optional[tuple[str, float]], attacks: list[str]) -> BoardRow:
    metric = BOARD_STYLE[target]["metric"]
    rows = run[target]
    legacy = "outcomes" not in run
    details: dict[str, list[Value]] = {}
    first = None
    if legacy:   # schema 1: only single-attack budgets have an exact per-budget value; no intervals
        by_budget: dict[tuple[str, float], list[dict]] = {}
        for r in rows:
            if r["attack"] != "none":
                by_budget.setdefault((r["norm"], float(r["eps"])), []).append(r)
        clean = Value(next((r[metric] for r in rows if r["attack"] == "none"), None))
        values = [Value(by_budget[b][0][metric]) if len(by_budget.get(b, [])) == 1 else Value() for b in budgets]
        for a in attacks:
            details[a] = [Value(next((r[metric] for r in by_budget.get(b, []) if r["attack"] == a), None))
                          for b in budgets]
    else:
        wc = {(i["norm"], float(i["eps"])): i for i in run["worst_case"][target]}
        def to_value(item: Optional[dict]) -> Value:
            if item is None or item.get(metric) is None:
                return Value()
            return Value(item[metric], tuple(item["interval"]) if item.get("interval") else None)
        clean = to_value(wc.get(("none", 0.0)))
        values = [to_value(wc.get(b)) for b in budgets]
        arrays = decoded(run).get(target, {})
        for a in attacks:
            details[a] = []
            for b in budgets:
                label = row_label(a, b[0], b[1])
                details[a].append(_row_value(target, arrays[label]) if label in arrays else Value())
    score = values[budgets.index(reference)] if reference in budgets else Value()
    if reference in budgets and attacks:
        first = details[attacks[0]][budgets.index(reference)]
    complete = run["complete"] and not legacy
    reason = (run.get("partial_reason") or "") if not run["complete"] else (LEGACY_REASON if legacy else "")
    return BoardRow(entry["model"], int(run["settings"]["n"]), clean, values, score, complete, reason,
                    masking_flags(run, target), entry["card"].get("family", ""), first_attack=first,
                    details=details)


def rank_rows(rows: list[BoardRow]) -> list[BoardRow]:
    """Rows sorted by their ranked value (highest first), ranked; a row whose interval overlaps the row above
    shares its rank (competition ranking: 1, =1, 3)."""
    key = lambda r: (-(r.score.value if r.score.value is not None else -math.inf), r.model)  # noqa: E731
    ordered = sorted(rows, key=key)
    for i, r in enumerate(ordered):
        above = ordered[i - 1] if i else None
        if (above is not None and above.score.interval is not None and r.score.interval is not None
                and intervals_overlap(above.score.interval, r.score.interval)):
            r.rank, r.tied = above.rank, True
        else:
            r.rank, r.tied = i + 1, False
    return ordered


def build_boards(entries: list[dict[str, Any]], dataset: str) -> list[Board]:
    """The boards of a dataset: one per (target, suite) that has rows, targets in a fixed order."""
    from ..suites import SUITES
    boards = []
    for target in ("reconstruction", "downstream"):
        suites = sorted({s for e in entries for s, r in e["runs"].items() if r[target]})
        for suite in suites:
            runs = [(e, e["runs"][suite]) for e in entries if suite in e["runs"] and e["runs"][suite][target]]
            budgets = sorted({(r["norm"], float(r["eps"])) for _, run in runs for r in run[target]
                              if r["attack"] != "none"}, key=lambda b: (b[0] != "Linf", b[0], b[1]))
            attacks: list[str] = []
            for _, run in runs:
                for r in run[target]:
                    if r["attack"] != "none" and r["attack"] not in attacks:
                        attacks.append(r["attack"])
            reference = reference_budget(dataset, budgets)
            rows = [_board_row(e, run, target, budgets, reference, attacks) for e, run in runs]
            ranked = rank_rows([r for r in rows if r.complete])
            partial = sorted((r for r in rows if not r.complete),
                             key=lambda r: (-(r.score.value if r.score.value is not None else -math.inf), r.model))
            spec = SUITES.get(suite) if suite in SUITES else None
            subset = (f"the first {spec.max_examples} sample ids" if spec is not None and spec.max_examples else "")
            cascade = bool(spec is not None and spec.cascade and target == "downstream")
            boards.append(Board(dataset, target, suite, budgets, reference, ranked, partial, attacks, subset,
                                cascade))
    return boards
