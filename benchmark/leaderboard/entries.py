"""Leaderboard entries: one JSON file per model and dataset (RobustBench style), validated and written atomically.

An entry holds the model's card and checkpoint hashes and, per suite, the run's settings, cells and rows (the
schema is documented in docs/ENTRIES.md). The CSV, Markdown, HTML and plots are generated from the entries,
never edited by hand. Every read and every write goes through `validate_entry`, so a malformed entry is caught
where it is made, not when a table looks wrong.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from zoo.fileio import atomic_write_text

from .outcomes import OutcomeError, check_outcomes

SCHEMA_VERSION = 2          # 2: new runs keep per-sample outcomes and their worst case (runs of 1: unranked)
READABLE_VERSIONS = (1, 2)
RECON_COLUMNS = ["model", "suite", "attack", "norm", "eps", "n", "mse", "psnr", "ssim", "lpips", "psnr_input",
                 "token_agreement"]
DOWNSTREAM_COLUMNS = ["model", "suite", "attack", "norm", "eps", "n", "accuracy"]
_METRICS = {"reconstruction": RECON_COLUMNS[6:], "downstream": DOWNSTREAM_COLUMNS[6:]}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")

# What happened to a run handed to `merge_run`.
ADDED, REPLACED, NEW_CHECKPOINT, KEPT_COMPLETE = "added", "replaced", "new checkpoint", "kept complete"


class EntryError(ValueError):
    """An entry file that does not follow the schema."""


class BoardConflict(ValueError):
    """Writing a run would throw away another checkpoint's entry, or mix two labels in one file."""


def safe_name(name: str) -> str:
    """A model label usable as a file name."""
    clean = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._")
    if not clean:
        raise EntryError(f"model name '{name}' gives an empty file name")
    return clean


def is_board_name(name: str) -> bool:
    """Whether `name` is a label a submission may use: letters, digits and . _ + -, at most 80 characters."""
    return bool(_NAME_RE.match(name))


def entries_dir(out: Path, dataset: str) -> Path:
    return Path(out) / dataset / "entries"


def entry_path(out: Path, dataset: str, model: str) -> Path:
    return entries_dir(out, dataset) / f"{safe_name(model)}.json"


# -- validation ---------------------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and not (isinstance(v, float) and math.isnan(v))


def _require(obj: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise EntryError(f"{where}: missing {', '.join(repr(k) for k in missing)}")


def _check_rows(rows: Any, target: str, model: str, suite: str, n: Optional[int], where: str) -> None:
    columns = RECON_COLUMNS if target == "reconstruction" else DOWNSTREAM_COLUMNS
    if not isinstance(rows, list):
        raise EntryError(f"{where}: rows must be a list")
    seen = set()
    for i, r in enumerate(rows):
        at = f"{where} row {i}"
        if not isinstance(r, dict):
            raise EntryError(f"{at}: not an object")
        missing = [c for c in columns if c not in r]
        if missing:
            raise EntryError(f"{at}: row lacks {missing}")
        if r["model"] != model or r["suite"] != suite:
            raise EntryError(f"{at}: model/suite {r['model']!r}/{r['suite']!r} differ from the entry's "
                             f"{model!r}/{suite!r}")
        if not isinstance(r["attack"], str) or not isinstance(r["norm"], str):
            raise EntryError(f"{at}: attack and norm must be strings")
        if not _is_number(r["eps"]) or r["eps"] < 0:
            raise EntryError(f"{at}: eps must be a number >= 0, got {r['eps']!r}")
        if (r["attack"] == "none") != (r["eps"] == 0):
            raise EntryError(f"{at}: the clean row (attack 'none') and only it has eps 0")
        if not _is_int(r["n"]) or r["n"] < 1 or (n is not None and r["n"] != n):
            raise EntryError(f"{at}: n must be the run's sample count {n}, got {r['n']!r}")
        for m in _METRICS[target]:
            if r[m] is not None and not _is_number(r[m]):
                raise EntryError(f"{at}: {m} must be a number or null, got {r[m]!r}")
        if target == "downstream" and r["accuracy"] is not None and not 0 <= r["accuracy"] <= 1:
            raise EntryError(f"{at}: accuracy {r['accuracy']} is not a fraction in [0, 1]")
        key = (r["attack"], r["norm"], float(r["eps"]))
        if key in seen:
            raise EntryError(f"{at}: duplicate row for {key}")
        seen.add(key)


def _check_run(suite: str, run: Any, model: str, where: str, version: int = SCHEMA_VERSION) -> None:
    at = f"{where}: run '{suite}'"
    if not isinstance(run, dict):
        raise EntryError(f"{at}: not an object")
    _require(run, ("suite", "settings", "cells", "complete", "date", "versions", "reconstruction", "downstream"), at)
    if run["suite"] != suite:
        raise EntryError(f"{at}: its 'suite' is {run['suite']!r}")
    settings = run["settings"]
    if not isinstance(settings, dict):
        raise EntryError(f"{at}: settings must be an object")
    _require(settings, ("n", "seed"), f"{at} settings")
    if not _is_int(settings["n"]) or settings["n"] < 1 or not _is_int(settings["seed"]):
        raise EntryError(f"{at}: settings n and seed must be integers (n >= 1)")
    if settings.get("amp", "none") not in ("none", "bf16"):
        raise EntryError(f"{at}: settings amp must be 'none' or 'bf16', got {settings['amp']!r}")
    if not isinstance(run["complete"], bool):
        raise EntryError(f"{at}: 'complete' must be true or false")
    if not run["complete"] and not run.get("partial_reason", "unknown"):
        raise EntryError(f"{at}: a partial run needs a non-empty 'partial_reason'")
    if not isinstance(run["cells"], list) or not isinstance(run["versions"], dict):
        raise EntryError(f"{at}: 'cells' must be a list and 'versions' an object")
    for key in ("unavailable", "gradient_masking", "validation", "examples", "universal"):
        if run.get(key) is not None and not isinstance(run[key], dict):
            raise EntryError(f"{at}: '{key}' must be an object")
    for target in ("reconstruction", "downstream"):
        _check_rows(run[target], target, model, suite, settings["n"], f"{at} {target}")
    if not run["reconstruction"] and not run["downstream"]:
        raise EntryError(f"{at}: no result rows")
    if "outcomes" in run:
        try:
            check_outcomes(run)
        except (OutcomeError, ValueError, KeyError, TypeError) as exc:
            raise EntryError(f"{at}: {exc}") from None


def validate_entry(entry: Any, where: str = "entry") -> dict[str, Any]:
    """Check an entry against the schema of docs/ENTRIES.md; returns it or raises EntryError naming the fault."""
    if not isinstance(entry, dict):
        raise EntryError(f"{where}: not a JSON object")
    _require(entry, ("schema_version", "model", "dataset", "card", "checkpoints", "runs"), where)
    if entry["schema_version"] not in READABLE_VERSIONS:
        raise EntryError(f"{where}: schema_version {entry['schema_version']} (this mimbench reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))})")
    if not isinstance(entry["model"], str) or not entry["model"] or not isinstance(entry["dataset"], str):
        raise EntryError(f"{where}: 'model' and 'dataset' must be non-empty strings")
    card = entry["card"]
    if not isinstance(card, dict) or not isinstance(card.get("family"), str) or not isinstance(card.get("arch"), dict):
        raise EntryError(f"{where}: 'card' must be an object with 'family' (string) and 'arch' (object)")
    ckpts = entry["checkpoints"]
    if not isinstance(ckpts, dict) or any(not isinstance(v, dict) or not re.fullmatch(r"[0-9a-f]{64}",
                                                                                       str(v.get("sha256", "")))
                                          for v in ckpts.values()):
        raise EntryError(f"{where}: 'checkpoints' must map roles to {{file, sha256}} with a 64-hex sha256")
    if not isinstance(entry["runs"], dict) or not entry["runs"]:
        raise EntryError(f"{where}: 'runs' must map suite names to runs (at least one)")
    for suite, run in entry["runs"].items():
        _check_run(suite, run, entry["model"], where, entry["schema_version"])
    return entry


def is_rankable(run: dict[str, Any]) -> bool:
    """True for a complete run with per-sample outcomes (schema 2): the only kind a board ranks."""
    return bool(run["complete"]) and "outcomes" in run


def missing_runs(out: Path, dataset: str, models: Sequence[str], suites: Sequence[str]) -> list[tuple[str, str]]:
    """(model, suite) pairs among `models` x `suites` without a rankable run on `dataset`'s board, in that order."""
    have = {(e["model"], s) for e in read_entries(out, dataset) for s, run in e["runs"].items() if is_rankable(run)}
    return [(m, s) for m in models for s in suites if (m, s) not in have]


def read_entry(path: Path) -> dict[str, Any]:
    try:
        entry = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise EntryError(f"{path}: not valid JSON ({exc})") from None
    return validate_entry(entry, str(path))


def read_entries(out: Path, dataset: str) -> list[dict[str, Any]]:
    folder = entries_dir(out, dataset)
    return [read_entry(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def datasets_with_entries(out: Path) -> list[str]:
    """The datasets under `out` that have an entries/ folder."""
    out = Path(out)
    return sorted(p.parent.name for p in out.glob("*/entries") if p.is_dir()) if out.is_dir() else []


# -- writing ------------------------------------------------------------------------------------------------------

def label_conflict(existing: Optional[dict[str, Any]], model: str, checkpoints: dict[str, Any],
                   replace: bool = False) -> Optional[str]:
    """Why writing `model` with these checkpoints over the `existing` entry of its file would lose data, or None.

    Another label in the file (two labels that map to one file name) is never merged; another checkpoint under
    the label replaces the entry only when the user asked for it (`replace`).
    """
    if existing is None:
        return None
    if existing.get("model") != model:
        return (f"label '{model}' and the board's '{existing.get('model')}' share the entry file "
                f"{safe_name(model)}.json; choose another --name")
    if not replace and existing.get("checkpoints") != checkpoints:
        sha = next(iter(existing.get("checkpoints", {}).values()), {}).get("sha256", "?")
        return (f"'{model}' is on the {existing.get('dataset')} board with another checkpoint (sha256 {sha[:12]}...); "
                f"choose another --name, or pass --replace to replace that entry")
    return None


def merge_run(existing: Optional[dict[str, Any]], model: str, dataset: str, base: dict[str, Any], suite: str,
              run: dict[str, Any], replace: bool = False) -> tuple[dict[str, Any], str]:
    """The entry after adding `run` under `suite`, and what happened (ADDED, REPLACED, NEW_CHECKPOINT, KEPT_COMPLETE).

    Same checkpoint: the suite's run is replaced (a resubmission never duplicates rows), except that a partial
    run never replaces a complete one (KEPT_COMPLETE: the entry is returned unchanged). Another checkpoint under
    the same name replaces the whole entry only with `replace` (its old rows would not be comparable with the
    new ones); without it, BoardConflict, as for two labels sharing one file.
    """
    conflict = label_conflict(existing, model, base.get("checkpoints", {}), replace)
    if conflict:
        raise BoardConflict(conflict)
    status = ADDED
    entry = existing
    if entry is not None and entry.get("checkpoints") != base.get("checkpoints"):
        entry, status = None, NEW_CHECKPOINT
    if entry is not None and suite in entry["runs"]:
        if entry["runs"][suite]["complete"] and not run["complete"]:
            return entry, KEPT_COMPLETE
        status = REPLACED
    old_runs = entry["runs"] if entry is not None else {}
    head = {"schema_version": SCHEMA_VERSION, "model": model, "dataset": dataset}
    rest = {k: v for k, v in {**(entry or {}), **base}.items() if k not in head and k != "runs"}
    return {**head, **rest, "runs": {**old_runs, suite: run}}, status


def entry_json(entry: dict[str, Any]) -> str:
    """The entry as the file holds it: indented, in the writer's key order; NaN and infinities become null."""
    return json.dumps(_finite(entry), indent=1, default=_json_default, allow_nan=False) + "\n"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_entry(out: Path, dataset: str, model: str, base: dict[str, Any], suite: str, run: dict[str, Any],
                replace: bool = False) -> tuple[Path, str]:
    """Add (or replace) one suite's run in the model's entry; validated, then written atomically.

    Returns the path and what happened (see `merge_run`). The caller serialises concurrent writers
    (`benchmark.leaderboard.lock.board_lock`).
    """
    path = entry_path(out, dataset, model)
    existing = read_entry(path) if path.exists() else None
    entry, status = merge_run(existing, model, dataset, base, suite, run, replace=replace)
    if status != KEPT_COMPLETE:
        entry = json.loads(entry_json(entry))  # what a reader will see: tuples as lists, numbers as JSON numbers
        validate_entry(entry, str(path))
        atomic_write_text(path, entry_json(entry))
    return path, status


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
