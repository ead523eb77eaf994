"""Figures of the leaderboards, drawn with matplotlib (Agg, no display needed).

- `curves_<suite>.png`: robustness curves, one panel per target and attack (accuracy or masked PSNR against eps,
  the clean value at eps 0), one line per model; partial entries dashed.
- `grid_<model>.png`: the reconstruction grid papers show for attacked MAEs, from the examples a run saved
  (clean input, masked input, attacked input, perturbation magnified, clean and attacked reconstruction); for a
  universal run the perturbation column is the universal perturbation, the same for every image.
- `transfer_<suite>.png`: transfer against white-box, per target and budget: each model's clean value, its
  white-box row and every transfer row, as bars with 95% intervals.
- `universal_<model>.png`: the universal perturbations of a run, one per loss and budget, magnified.
- `corruptions_<model>.png`: a heat map per target of the model's accuracy and masked PSNR per corruption and
  severity, with the mean over severities.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zoo.fileio import atomic_path  # noqa: E402

from ..suites import format_eps  # noqa: E402
from .boards import Board  # noqa: E402
from .entries import safe_name  # noqa: E402

PLOTS_DIR = "plots"
_DPI = 100


def _save(fig, path: Path) -> Path:
    """Save atomically (temporary file + rename) so a reader never sees half a PNG; metadata-free for stable bytes."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=_DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def curves_figure(boards: list[Board], suite: str, dataset: str):
    """The robustness curves of one suite: per target and norm, each model's worst case against eps (clean at 0)
    with its 95% interval as a band; dashed lines are runs not ranked (partial). None when nothing is attacked."""
    panels = []
    for b in boards:
        if b.suite != suite:
            continue
        for norm in sorted({n for n, _ in b.budgets}, key=lambda n: n != "Linf"):
            panels.append((b, norm))
    if not panels:
        return None
    models = sorted({r.model for b, _ in panels for r in b.ranked + b.partial})
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    unranked = {r.model: r.n for b, _ in panels for r in b.partial}
    labels = {m: m + (f" (not ranked, n={unranked[m]})" if m in unranked else "") for m in models}
    width = 4.3 * ncols
    legend_cols, legend_rows = _legend_layout(list(labels.values()), width)
    height = 3.3 * nrows + 0.5 + _LEGEND_ROW_IN * legend_rows
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for ax, (b, norm) in zip(axes.flat, panels):
        scale = b.style["scale"]
        budgets = [(i, eps) for i, (n, eps) in enumerate(b.budgets) if n == norm]
        for r in sorted(b.ranked + b.partial, key=lambda r: r.model):
            pts = [(0.0, r.clean)] + [(eps, r.values[i]) for i, eps in budgets]
            pts = [(e, v) for e, v in pts if v.value is not None]
            if len(pts) < 2:
                continue
            xs = [e for e, _ in pts]
            ax.plot(xs, [v.value * scale for _, v in pts], marker="o", ms=4, lw=1.6, color=colors[r.model],
                    ls="-" if r.complete else "--", label=labels[r.model])
            if all(v.interval is not None for _, v in pts):
                ax.fill_between(xs, [v.interval[0] * scale for _, v in pts], [v.interval[1] * scale for _, v in pts],
                                color=colors[r.model], alpha=0.15, lw=0)
        eps = [0.0] + [e for _, e in budgets]
        ax.set_xticks(eps, [format_eps(e) for e in eps], fontsize=8)
        ax.set_xlabel("severity (0: clean)" if b.is_mean else f"eps ({norm})")
        ax.set_ylabel(b.style["label"])
        if b.is_mean:
            ax.set_title(f"{b.target}: mean over {len(b.attacks)} corruptions", fontsize=9)
        else:
            ax.set_title(f"{b.target}: worst case over {', '.join(b.ranked_attacks or b.attacks)}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles: dict = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.suptitle(f"{dataset}, suite {suite}: robustness curves (bands: 95% intervals)", fontsize=11)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=legend_cols,
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, (0.15 + _LEGEND_ROW_IN * legend_rows) / height, 1, 1 - 0.35 / height))
    return fig


_LEGEND_ROW_IN = 0.18  # height of one legend row at fontsize 8, inches


def _legend_layout(labels: list[str], width_in: float) -> tuple[int, int]:
    """Legend columns and rows such that the longest label fits the figure's width (fontsize 8)."""
    per_col = 0.062 * max((len(s) for s in labels), default=1) + 0.6   # text + marker and spacing, inches
    cols = max(1, min(len(labels), int(width_in // per_col)))
    return cols, math.ceil(len(labels) / cols)


def _column(imgs: np.ndarray, pad: int) -> np.ndarray:
    """k images C x H x W stacked vertically with white gaps: one H' x W x C picture (C = 1 or 3)."""
    k, c, h, w = imgs.shape
    out = np.ones((k * h + (k - 1) * pad, w, c), dtype=np.float32)
    for i in range(k):
        out[i * (h + pad):i * (h + pad) + h] = np.clip(imgs[i], 0, 1).transpose(1, 2, 0)
    return out


def grid_figure(ex: dict[str, Any], model: str):
    """Rows = examples; columns = clean, masked input, attacked, perturbation (magnified), two reconstructions.

    Each column is one image of the k examples stacked (one axes per column keeps matplotlib fast)."""
    clean, delta = ex["clean"], ex["delta"]
    eps, norm = float(ex["meta"]["eps"]), ex["meta"]["norm"]
    k, c, h, w = clean.shape
    if norm == "Linf":
        gain = 0.5 / eps
        pert_title = f"perturbation\n(x{gain:.3g}, grey = 0)"
    else:
        gain = 0.5 / max(float(np.abs(delta).max()), 1e-12)
        pert_title = "perturbation\n(scaled, grey = 0)"
    masked_input = clean * (1 - ex["mask_pixels"]) + 0.5 * ex["mask_pixels"]
    columns = [("clean input", clean), ("masked input", masked_input), ("attacked input", clean + delta),
               (pert_title, 0.5 + gain * delta), ("clean\nreconstruction", ex["recon_clean"]),
               ("attacked\nreconstruction", ex["recon_attacked"])]
    pad = max(2, h // 10)
    fig, axes = plt.subplots(1, len(columns), figsize=(1.5 * len(columns) + 0.4, 1.5 * k * (1 + pad / h) + 0.9))
    centres = [i * (h + pad) + h / 2 for i in range(k)]
    for j, (ax, (title, imgs)) in enumerate(zip(axes, columns)):
        pic = _column(imgs, pad)
        if c == 1:
            ax.imshow(pic[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(pic, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks(centres if j == 0 else [], [f"id {int(i)}" for i in ex["sample_ids"]] if j == 0 else [],
                      fontsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
        if j >= 4:
            values = ex["psnr_clean"] if j == 4 else ex["psnr_attacked"]
            for i, v in enumerate(values):
                ax.text(w - 1, i * (h + pad) + h - 1, f"{v:.1f} dB", color="yellow", fontsize=6.5, ha="right",
                        va="bottom", bbox=dict(facecolor="black", alpha=0.6, pad=0.5, lw=0))
    fig.suptitle(f"{model}: {ex['meta']['attack']} {norm} eps {format_eps(eps)}\n(masked PSNR in the corner of "
                 f"each reconstruction)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def transfer_figure(boards: list[Board], suite: str, dataset: str):
    """Bars per target (rows) and budget (columns): per model, clean, the white-box reference row and each transfer
    row, with 95% intervals. None when the suite has no transfer board."""
    mine = [b for b in boards if b.suite == suite and b.ranked_attacks and b.reference_attack]
    if not mine:
        return None
    ncols = max(len(b.budgets) for b in mine)
    fig, axes = plt.subplots(len(mine), ncols, figsize=(4.6 * ncols, 3.4 * len(mine) + 0.9), squeeze=False)
    for i, b in enumerate(mine):
        rows = b.ranked + b.partial
        series = ["clean", b.reference_attack] + b.ranked_attacks
        colours = {name: plt.get_cmap("tab10")(k) for k, name in enumerate(series)}
        width = 0.8 / len(series)
        for j in range(ncols):
            ax = axes[i, j]
            if j >= len(b.budgets):
                ax.set_visible(False)
                continue
            for k, name in enumerate(series):
                vals = [r.clean if name == "clean" else r.details.get(name, [])[j] for r in rows]
                xs = np.arange(len(rows)) + (k - (len(series) - 1) / 2) * width
                ys = [(v.value or 0.0) * b.style["scale"] for v in vals]
                err = [[max(0.0, (v.value - v.interval[0]) * b.style["scale"]) if v.interval and v.value is not None
                        else 0.0 for v in vals],
                       [max(0.0, (v.interval[1] - v.value) * b.style["scale"]) if v.interval and v.value is not None
                        else 0.0 for v in vals]]
                label = f"{name} (white-box)" if name == b.reference_attack else name
                ax.bar(xs, ys, width, yerr=err, color=colours[name], label=label, capsize=1.5,
                       error_kw={"lw": 0.6})
            ax.set_xticks(np.arange(len(rows)), [r.model for r in rows], rotation=30, ha="right", fontsize=7)
            ax.set_ylabel(b.style["label"], fontsize=8)
            ax.set_title(f"{b.target}, {b.budget_label(b.budgets[j])}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        axes[i, len(b.budgets) - 1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{dataset}, suite {suite}: transfer against white-box (bars: 95% intervals)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def universal_figure(perturbations: dict[str, Any], model: str):
    """The universal perturbations of a run: rows = losses, columns = budgets, each shown at gain 0.5/eps."""
    from ..suites import format_eps as fmt
    keys = sorted(perturbations, key=lambda k: (k.split("|")[0], float(k.split("|")[2])))
    losses = list(dict.fromkeys(k.split("|")[0] for k in keys))
    budgets = sorted({float(k.split("|")[2]) for k in keys})
    fig, axes = plt.subplots(len(losses), len(budgets), figsize=(1.9 * len(budgets) + 0.6, 2.4 * len(losses) + 0.7),
                             squeeze=False)
    for i, loss in enumerate(losses):
        for j, eps in enumerate(budgets):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            key = next((k for k in keys if k.split("|")[0] == loss and float(k.split("|")[2]) == eps), None)
            if key is None:
                ax.set_visible(False)
                continue
            delta = np.asarray(perturbations[key], dtype=np.float32)
            pic = np.clip(0.5 + 0.5 * delta / max(eps, 1e-12), 0, 1).transpose(1, 2, 0)
            ax.imshow(pic[..., 0] if pic.shape[2] == 1 else pic, cmap="gray" if pic.shape[2] == 1 else None,
                      vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{loss}\n{key.split('|')[1]} {fmt(eps)}", fontsize=7)
    fig.suptitle(f"{model}: universal perturbations (x 0.5/eps, grey = 0)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def corruption_heatmap(boards: list[Board], model: str):
    """Per target a heat map of the model's value per corruption (rows) and severity (columns), plus the mean over
    severities; None when the model is on no corruption board."""
    panels = [(b, next((r for r in b.ranked + b.partial if r.model == model), None)) for b in boards if b.is_mean]
    panels = [(b, r) for b, r in panels if r is not None]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels) + 0.6,
                                                      0.32 * max(len(b.attacks) for b, _ in panels) + 1.6),
                             squeeze=False)
    for ax, (b, r) in zip(axes[0], panels):
        scale = b.style["scale"]
        grid = np.array([[np.nan if v.value is None else v.value * scale for v in r.details.get(a, [])]
                         + [np.nan if r.detail_means.get(a) is None or r.detail_means[a].value is None
                            else r.detail_means[a].value * scale] for a in b.attacks])
        image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6,
                        color="white" if v < np.nanmean(grid) else "black")
        ax.set_xticks(range(len(b.budgets) + 1), [format_eps(e) for _, e in b.budgets] + ["mean"], fontsize=7)
        ax.set_yticks(range(len(b.attacks)), b.attacks, fontsize=7)
        ax.set_xlabel("severity", fontsize=8)
        clean = "–" if r.clean.value is None else f"{r.clean.value * scale:.{b.style['digits']}f}"
        ax.set_title(f"{b.target}: {b.style['label']} (clean {clean})", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(f"{model}: common corruptions", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def write_plots(folder: Path, entries: list[dict[str, Any]], boards: list[Board]) -> dict[str, dict[str, str]]:
    """Draw every curve and grid of a dataset into `<folder>/plots/`; returns {'curves': {suite: relpath},
    'grids': {model: relpath}}, paths relative to `folder`. Plots of models no longer on the board are removed."""
    from .examples import load_examples
    from .universal import load_universal
    plots = Path(folder) / PLOTS_DIR
    figures: dict[str, dict[str, str]] = {"curves": {}, "grids": {}}
    dataset = Path(folder).name
    suites = sorted({s for e in entries for s in e["runs"]})
    for suite in suites:
        fig = curves_figure(boards, suite, dataset)
        if fig is not None:
            name = f"curves_{safe_name(suite)}.png"
            _save(fig, plots / name)
            figures["curves"][suite] = f"{PLOTS_DIR}/{name}"
        fig = transfer_figure(boards, suite, dataset)
        if fig is not None:
            name = f"transfer_{safe_name(suite)}.png"
            _save(fig, plots / name)
            figures.setdefault("transfer", {})[suite] = f"{PLOTS_DIR}/{name}"
    for e in entries:
        fig = corruption_heatmap([b for b in boards if b.is_mean], e["model"])
        if fig is not None:
            name = f"corruptions_{safe_name(e['model'])}.png"
            _save(fig, plots / name)
            figures.setdefault("heatmaps", {})[e["model"]] = f"{PLOTS_DIR}/{name}"
        info = next((r["universal"] for r in e["runs"].values() if r.get("universal")), None)
        if info is not None and (Path(folder) / info["file"]).is_file():
            name = f"universal_{safe_name(e['model'])}.png"
            _save(universal_figure(load_universal(Path(folder) / info["file"])[0], e["model"]), plots / name)
            figures.setdefault("universal", {})[e["model"]] = f"{PLOTS_DIR}/{name}"
    for e in entries:
        drawn: set[str] = set()
        for info in (r["examples"] for r in e["runs"].values() if r.get("examples")):
            src = Path(folder) / info["file"]
            if info["file"] in drawn or not src.is_file():
                continue
            drawn.add(info["file"])
            variant = src.name[len(safe_name(e["model"])) + 1:-len(".safetensors")]   # '' or 'universal'
            name = f"grid_{safe_name(e['model'])}{'.' + variant if variant else ''}.png"
            target = plots / name
            if not target.is_file() or target.stat().st_mtime <= src.stat().st_mtime:
                _save(grid_figure(load_examples(src), e["model"]), target)
            figures["grids"][e["model"] + (f" ({variant})" if variant else "")] = f"{PLOTS_DIR}/{name}"
    keep = {Path(p).name for group in figures.values() for p in group.values()}
    for stale in plots.glob("*.png") if plots.is_dir() else []:
        if stale.name not in keep and stale.name.startswith(("curves_", "grid_", "transfer_", "universal_",
                                                             "corruptions_")):
            stale.unlink()
    return figures
