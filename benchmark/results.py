"""Leaderboard entries: one JSON file per model and dataset (RobustBench style), written atomically.

An entry holds the model's card and checkpoint hashes and, per suite, the run's settings, cells and rows.
The CSV and Markdown tables are generated from the entries, never edited by hand.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional

SCHEMA_VERSION = 1
RECON_COLUMNS = ["model", "suite", "attack", "norm", "eps", "n", "mse", "psnr", "ssim", "lpips", "psnr_input",
                 "token_agreement"]
DOWNSTREAM_COLUMNS = ["model", "suite", "attack", "norm", "eps", "n", "accuracy"]


class EntryError(ValueError):
    """An entry file that does not follow the schema."""


def safe_name(name: str) -> str:
    """A model label usable as a file name."""
    clean = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._")
    if not clean:
        raise EntryError(f"model name '{name}' gives an empty file name")
    return clean


def entries_dir(out: Path, dataset: str) -> Path:
    return Path(out) / dataset / "entries"


def entry_path(out: Path, dataset: str, model: str) -> Path:
    return entries_dir(out, dataset) / f"{safe_name(model)}.json"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_rows(rows: Any, columns: list[str], where: str) -> None:
    if not isinstance(rows, list):
        raise EntryError(f"{where}: rows must be a list")
    for r in rows:
        if not isinstance(r, dict) or any(c not in r for c in columns):
            missing = [c for c in columns if not isinstance(r, dict) or c not in r]
            raise EntryError(f"{where}: row lacks {missing}")


def validate_entry(entry: Any, where: str = "entry") -> dict[str, Any]:
    """Check the schema of an entry (see docs/ENTRIES.md); returns it or raises EntryError."""
    if not isinstance(entry, dict):
        raise EntryError(f"{where}: not a JSON object")
    for key in ("schema_version", "model", "dataset", "card", "runs"):
        if key not in entry:
            raise EntryError(f"{where}: missing '{key}'")
    if entry["schema_version"] != SCHEMA_VERSION:
        raise EntryError(f"{where}: schema_version {entry['schema_version']} (expected {SCHEMA_VERSION})")
    if not isinstance(entry["runs"], dict):
        raise EntryError(f"{where}: 'runs' must map suite names to runs")
    for suite, run in entry["runs"].items():
        for key in ("settings", "reconstruction", "downstream", "complete"):
            if key not in run:
                raise EntryError(f"{where}: run '{suite}' lacks '{key}'")
        _check_rows(run["reconstruction"], RECON_COLUMNS, f"{where}: run '{suite}' reconstruction")
        _check_rows(run["downstream"], DOWNSTREAM_COLUMNS, f"{where}: run '{suite}' downstream")
    return entry


def read_entry(path: Path) -> dict[str, Any]:
    try:
        entry = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise EntryError(f"{path}: not valid JSON ({exc})") from None
    return validate_entry(entry, str(path))


def read_entries(out: Path, dataset: str) -> list[dict[str, Any]]:
    folder = entries_dir(out, dataset)
    return [read_entry(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def write_entry(out: Path, dataset: str, model: str, base: dict[str, Any], suite: str, run: dict[str, Any],
                replace: bool = False) -> Path:
    """Add (or replace) one suite's run in the model's entry; the entry is validated before it is written."""
    path = entry_path(out, dataset, model)
    entry: Optional[dict[str, Any]] = None
    if path.exists() and not replace:
        entry = read_entry(path)
        if entry.get("checkpoints") != base.get("checkpoints"):
            entry = None  # another checkpoint under the same name: its rows would not be comparable
    if entry is None:
        entry = {"schema_version": SCHEMA_VERSION, "model": model, "dataset": dataset, "runs": {}}
    entry.update({k: v for k, v in base.items() if k not in ("runs",)})
    entry["schema_version"], entry["model"], entry["dataset"] = SCHEMA_VERSION, model, dataset
    entry["runs"][suite] = run
    validate_entry(entry, str(path))
    atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=False, default=_json_default) + "\n")
    return path


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
