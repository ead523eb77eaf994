"""Regenerate a board folder from its entries: tidy CSV, ranked Markdown, plots and HTML pages.

Everything here is a pure function of the entries under the folder (plus the example images saved beside them),
so deleting the generated files and running `python -m benchmark.report` gives them back byte for byte. The
caller holds the board lock (`benchmark.leaderboard.lock.board_lock`) when other writers may be running;
`regenerate` writes each dataset's files as one unit (`staging.staged_update`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from zoo.fileio import atomic_write_text

from . import html, plots
from .boards import build_boards, tidy_frames
from .entries import datasets_with_entries, read_entries
from .markdown import board_markdown
from .staging import staged_update


def write_reports(out: Path, dataset: str) -> dict[str, Path]:
    """Regenerate the dataset's CSVs, Markdown, plots and HTML from its entries, then the index page."""
    paths = write_dataset_reports(out, dataset)
    paths["../index.html"] = write_index(out)
    return paths


def write_dataset_reports(out: Path, dataset: str) -> dict[str, Path]:
    """Regenerate the files of `<out>/<dataset>` (CSVs, Markdown, plots, its HTML page) from its entries."""
    out = Path(out)
    entries = read_entries(out, dataset)
    rf, df = tidy_frames(entries)
    boards = build_boards(entries, dataset)
    notes: dict[str, str] = {}
    for e in entries:
        for run in e["runs"].values():
            notes.update(run.get("unavailable") or {})
    folder = out / dataset
    paths = {"reconstruction.csv": folder / "reconstruction.csv", "downstream.csv": folder / "downstream.csv",
             "reconstruction.md": folder / "reconstruction.md", "downstream.md": folder / "downstream.md"}
    atomic_write_text(paths["reconstruction.csv"], rf.to_csv(index=False))
    atomic_write_text(paths["downstream.csv"], df.to_csv(index=False))
    atomic_write_text(paths["reconstruction.md"], board_markdown("reconstruction", boards, notes))
    atomic_write_text(paths["downstream.md"], board_markdown("downstream", boards, notes))
    figures = plots.write_plots(folder, entries, boards)
    paths["index.html"] = html.write_dataset_page(folder, dataset, entries, boards, figures, notes)
    return paths


def write_index(out: Path) -> Path:
    """`<out>/index.html`: every dataset's top rows, linking to its page."""
    out = Path(out)
    summary = {}
    for ds in datasets_with_entries(out):
        entries = read_entries(out, ds)
        summary[ds] = (build_boards(entries, ds), len(entries))
    return html.write_index_page(out, summary)


def regenerate(out: Path, datasets: Optional[Sequence[str]] = None) -> list[Path]:
    """Rewrite the reports of every dataset under `out` (or the given ones) from their entries, each dataset's
    files as one unit."""
    out = Path(out)
    written: list[Path] = []
    for ds in datasets or datasets_with_entries(out):
        with staged_update(out, ds) as stage:
            names = write_dataset_reports(stage, ds)
        written += [out / ds / Path(p).relative_to(stage / ds) for p in names.values()]
    written.append(write_index(out))
    return written
