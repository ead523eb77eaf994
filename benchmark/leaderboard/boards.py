"""The ranked data model of the leaderboards: tidy tables and one Board per (target, suite), built from entries.

A board's columns are the budgets of its suite; a model's value at a budget is the per-sample worst case over
every attack row of that budget (`outcomes.worst_case`: a sample is robust only if it survives all of them; the
lowest masked PSNR), with its 95% interval. Models are ranked by the value at the dataset's reference budget
(`suites.REFERENCE_EPS`); a model whose interval overlaps the one above shares its rank. Everything here is a pure
function of the entries; the Markdown, HTML and plots render these objects.

Three suites rank differently (their `Suite` says how): `transfer` ranks by the worst case over its transfer rows
only (`ranked_attacks`), the white-box PGD row of the same budget (`reference_attack`) shown beside it, since the
worst case over all rows would be the white-box number; `corruptions` (`aggregate` 'mean') shows per severity the
mean over the corruptions and ranks by the mean over every corruption and severity, as RobustBench reports
corruptions (per sample the mean over the rows, then the mean over samples with its normal 95% interval).
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
from .entries import DOWNSTREAM_COLUMNS, RECON_COLUMNS, is_rankable
from .outcomes import decoded
from .suite_changes import suite_changes

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
    first_attack: Optional[Value] = None        # the suite's first attack alone (or its reference attack) at the
    #                                             reference budget
    details: dict[str, list[Value]] = field(default_factory=dict)   # attack -> value per budget (its own row)
    extra: list[Value] = field(default_factory=list)                 # columns after the budgets (a mean board's mean)
    detail_means: dict[str, Value] = field(default_factory=dict)     # attack -> mean over its budgets (mean boards)
    changes: list[str] = field(default_factory=list)  # how the suite changed since the run (docs: suite_changes.py)

    @property
    def marks(self) -> str:
        """' ⚠' for evidence of broken gradients, ' †' for a run of an earlier definition of its suite."""
        return (" ⚠" if self.flags else "") + (" †" if self.changes else "")

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
    ranked_attacks: list[str] = field(default_factory=list)   # the rows the worst case is over (empty: all rows)
    reference_attack: str = ""                  # the white-box row shown beside the ranked ones
    aggregate: str = "worst"                    # 'worst' | 'mean' (see the module's docstring)

    @property
    def style(self) -> dict[str, Any]:
        return BOARD_STYLE[self.target]

    @property
    def is_mean(self) -> bool:
        return self.aggregate == "mean"

    def ranking_rule(self) -> str:
        """How the board ranks, in words."""
        if self.is_mean:
            return (f"the mean over {len(self.attacks)} corruption{'s' if len(self.attacks) != 1 else ''} and "
                    f"{len(self.budgets)} severit{'ies' if len(self.budgets) != 1 else 'y'}")
        what = f"the worst case over {', '.join(self.ranked_attacks)}" if self.ranked_attacks else "the worst case"
        return f"{what} at {self.budget_label(self.reference)}" if self.reference is not None else what

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
        heads = ["Clean"] + [self.budget_label(b) + (" (ranked)" if b == self.reference else "")
                             for b in self.budgets]
        return heads + (["Mean (ranked)"] if self.is_mean else [])


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


def _mean_value(target: str, arrays: dict[str, np.ndarray], labels: list[str]) -> Value:
    """Per sample the mean over the rows `labels` (correctness as 0/1, or masked PSNR), then the mean over samples
    with its normal 95% interval."""
    if not labels:
        return Value()
    stack = np.stack([arrays[label].astype(np.float64) for label in labels])
    finite = np.isfinite(stack)
    counts = finite.sum(0)
    per = np.where(counts > 0, np.where(finite, stack, 0.0).sum(0) / np.maximum(counts, 1), np.nan)
    stats = mean_interval(per[np.isfinite(per)].tolist())
    if stats is None:
        return Value()
    if target == "downstream":   # a mean of fractions: the normal interval clipped to [0, 1]
        return Value(stats[0], (max(0.0, stats[1]), min(1.0, stats[2])))
    return Value(stats[0], (stats[1], stats[2]))


def _worst_value(target: str, arrays: dict[str, np.ndarray], labels: list[str]) -> Value:
    """The per-sample worst case over the rows `labels` (robust only if correct clean and under every one of them;
    the lowest masked PSNR), as `outcomes.worst_case` computes it over all the rows of a budget."""
    if not labels:
        return Value()
    if target == "downstream":
        robust = arrays["clean"].copy()
        for label in labels:
            robust &= arrays[label]
        return _row_value(target, robust)
    return _row_value(target, np.fmin.reduce([arrays[label] for label in labels]))


def _board_row(entry: dict[str, Any], run: dict[str, Any], target: str, budgets: list[tuple[str, float]],
               reference: Optional[tuple[str, float]], attacks: list[str], ranked_attacks: tuple[str, ...] = (),
               reference_attack: str = "", aggregate: str = "worst") -> BoardRow:
    metric = BOARD_STYLE[target]["metric"]
    rows = run[target]
    legacy = "outcomes" not in run
    details: dict[str, list[Value]] = {}
    detail_means: dict[str, Value] = {}
    extra: list[Value] = []
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
        labels = {b: [row_label(r["attack"], r["norm"], r["eps"]) for r in rows
                      if r["attack"] != "none" and (r["norm"], float(r["eps"])) == b] for b in budgets}
        if aggregate == "mean":
            values = [_mean_value(target, arrays, labels[b]) for b in budgets]
            extra = [_mean_value(target, arrays, [label for b in budgets for label in labels[b]])]
            for a in attacks:
                detail_means[a] = _mean_value(target, arrays, [row_label(a, b[0], b[1]) for b in budgets
                                                               if row_label(a, b[0], b[1]) in arrays])
        elif ranked_attacks:
            values = [_worst_value(target, arrays, [label for label in labels[b] if label.split("|")[0] in
                                                    ranked_attacks]) for b in budgets]
    if aggregate == "mean":
        score = extra[0] if extra else Value()
    else:
        score = values[budgets.index(reference)] if reference in budgets else Value()
    shown_first = reference_attack if reference_attack in attacks else (attacks[0] if attacks else None)
    if reference in budgets and shown_first is not None:
        first = details[shown_first][budgets.index(reference)]
    complete = is_rankable(run)
    reason = (run.get("partial_reason") or "") if not run["complete"] else (LEGACY_REASON if legacy else "")
    return BoardRow(entry["model"], int(run["settings"]["n"]), clean, values, score, complete, reason,
                    masking_flags(run, target), entry["card"].get("family", ""), first_attack=first,
                    details=details, extra=extra, detail_means=detail_means)


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
            spec = SUITES.get(suite) if suite in SUITES else None
            aggregate = spec.aggregate if spec is not None else "worst"
            ranked_attacks = tuple(a for a in (spec.ranked_attacks if spec is not None else ()) if a in attacks)
            reference_attack = spec.reference_attack if spec is not None and spec.reference_attack in attacks else ""
            reference = None if aggregate == "mean" else reference_budget(dataset, budgets)
            rows = [_board_row(e, run, target, budgets, reference, attacks, ranked_attacks, reference_attack,
                               aggregate) for e, run in runs]
            for row, (_, run) in zip(rows, runs):
                row.changes = suite_changes(run, dataset, target)
            ranked = rank_rows([r for r in rows if r.complete])
            partial = sorted((r for r in rows if not r.complete),
                             key=lambda r: (-(r.score.value if r.score.value is not None else -math.inf), r.model))
            subset = (f"the first {spec.max_examples} sample ids" if spec is not None and spec.max_examples else "")
            cascade = bool(spec is not None and spec.cascade and target == "downstream")
            boards.append(Board(dataset, target, suite, budgets, reference, ranked, partial, attacks, subset,
                                cascade, list(ranked_attacks), reference_attack, aggregate))
    return boards
