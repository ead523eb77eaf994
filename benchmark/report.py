"""Tables generated from the entries: tidy CSV (one row per model, suite, attack, norm, eps) and Markdown."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .results import DOWNSTREAM_COLUMNS, RECON_COLUMNS, atomic_write_text, read_entries
from .suites import format_eps


def tidy_frames(entries: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    recon, down = [], []
    for e in entries:
        for run in e["runs"].values():
            recon += run["reconstruction"]
            down += run["downstream"]
    rf = pd.DataFrame(recon, columns=RECON_COLUMNS)
    df = pd.DataFrame(down, columns=DOWNSTREAM_COLUMNS)
    for f in (rf, df):
        f.sort_values(["model", "suite", "attack", "norm", "eps"], inplace=True, kind="stable")
        f.reset_index(drop=True, inplace=True)
    return rf, df


def _fmt(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def _cell_label(attack: str, norm: str, eps: float) -> str:
    return f"{attack} {norm} {format_eps(eps)}"


def _markdown_table(frame: pd.DataFrame, value: str, digits: int, scale: float, rank_desc: bool) -> str:
    """One row per model: clean value, then the value under each attack cell; ranked by the attacked mean."""
    lines = []
    for suite, sf in frame.groupby("suite", sort=True):
        cells = sf[sf["attack"] != "none"][["attack", "norm", "eps"]].drop_duplicates()
        cells = cells.sort_values(["attack", "norm", "eps"]).itertuples(index=False)
        cells = list(cells)
        header = ["#", "Model", "n", "Clean"] + [_cell_label(*c) for c in cells]
        rows = []
        for model, mf in sf.groupby("model", sort=False):
            clean = mf[mf["attack"] == "none"][value]
            vals = []
            for c in cells:
                hit = mf[(mf["attack"] == c.attack) & (mf["norm"] == c.norm) & (mf["eps"] == c.eps)][value]
                vals.append(hit.iloc[0] if len(hit) else None)
            numeric = [v for v in vals if v is not None and not math.isnan(v)]
            score = sum(numeric) / len(numeric) if numeric else -math.inf
            rows.append((score, model, int(mf["n"].max()), clean.iloc[0] if len(clean) else None, vals))
        rows.sort(key=lambda r: (-r[0] if rank_desc else r[0], r[1]))
        lines.append(f"### Suite `{suite}`\n")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---:", ":---", "---:"] + ["---:"] * (len(header) - 3)) + "|")
        for i, (_, model, n, clean, vals) in enumerate(rows, 1):
            cols = [str(i), f"`{model}`", str(n), _fmt(None if clean is None else clean * scale, digits)]
            cols += [_fmt(None if v is None else v * scale, digits) for v in vals]
            lines.append("| " + " | ".join(cols) + " |")
        lines.append("")
    return "\n".join(lines)


def reconstruction_markdown(rf: pd.DataFrame, notes: dict[str, str]) -> str:
    text = ["# Reconstruction robustness\n",
            "Masked-patch PSNR in dB (higher is better) of the reconstruction against the clean image, clean and "
            "under each attack (eps in [0, 1] pixel units). Ranked by the mean PSNR under attack. The CSV next to "
            "this file also has MSE, SSIM and LPIPS on the composite image, PSNR of the attacked input and, for "
            "BEiT, token agreement.\n"]
    text.append(_markdown_table(rf, "psnr", 2, 1.0, rank_desc=True) if len(rf) else "_No results yet._\n")
    if notes:
        text.append("Notes:\n" + "\n".join(f"- `{k}`: {v}" for k, v in sorted(notes.items())) + "\n")
    return "\n".join(text)


def downstream_markdown(df: pd.DataFrame) -> str:
    text = ["# Downstream robustness\n",
            "Accuracy in % of the fine-tuned classifier, clean and under each attack (a sample counts only if it "
            "is correct clean and under the attack). Ranked by the mean robust accuracy.\n"]
    text.append(_markdown_table(df, "accuracy", 1, 100.0, rank_desc=True) if len(df) else "_No results yet._\n")
    return "\n".join(text)


def write_reports(out: Path, dataset: str) -> dict[str, Path]:
    """Regenerate the dataset's CSV and Markdown tables from its entries."""
    out = Path(out)
    entries = read_entries(out, dataset)
    rf, df = tidy_frames(entries)
    notes: dict[str, str] = {}
    for e in entries:
        for run in e["runs"].values():
            notes.update(run.get("unavailable", {}))
    folder = out / dataset
    paths = {"reconstruction.csv": folder / "reconstruction.csv", "downstream.csv": folder / "downstream.csv",
             "reconstruction.md": folder / "reconstruction.md", "downstream.md": folder / "downstream.md"}
    atomic_write_text(paths["reconstruction.csv"], rf.to_csv(index=False))
    atomic_write_text(paths["downstream.csv"], df.to_csv(index=False))
    atomic_write_text(paths["reconstruction.md"], reconstruction_markdown(rf, notes))
    atomic_write_text(paths["downstream.md"], downstream_markdown(df))
    return paths


def run_summary(reconstruction: list[dict], downstream: list[dict]) -> str:
    """A short plain-text table of one run, printed at the end of `run_bench.py`."""
    lines = []
    if downstream:
        lines.append(f"{'downstream':<26}{'accuracy':>10}")
        for r in downstream:
            lines.append(f"  {_label(r):<24}{_fmt(r['accuracy'], 4):>10}")
    if reconstruction:
        lines.append(f"{'reconstruction':<26}{'psnr':>8}{'ssim':>8}{'mse':>9}{'psnr_in':>9}{'lpips':>8}{'tok':>7}")
        for r in reconstruction:
            lines.append(f"  {_label(r):<24}{_fmt(r['psnr'], 2):>8}{_fmt(r['ssim'], 3):>8}{_fmt(r['mse'], 4):>9}"
                         f"{_fmt(r['psnr_input'], 2):>9}{_fmt(r['lpips'], 3):>8}{_fmt(r['token_agreement'], 3):>7}")
    return "\n".join(lines)


def _label(r: dict) -> str:
    return "clean" if r["attack"] == "none" else f"{r['attack']} {r['norm']} {format_eps(r['eps'])}"
