"""`python -m benchmark.report`: regenerate the leaderboards (CSV, Markdown, HTML, plots) from their entries.

    python -m benchmark.report                        # regenerate every dataset's reports under leaderboards/
    python -m benchmark.report --readme README.md     # ... and the README's leaderboard block
    python -m benchmark.report --readme README.md --check   # exit 1 if the README's block is stale
    python -m benchmark.report --missing              # "MODEL SUITE" lines: shipped models' runs still to do
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from zoo.registry import get_card, shipped_models

from .leaderboard.entries import EntryError, datasets_with_entries, missing_runs, read_entries
from .leaderboard.lock import BoardLockTimeout, board_lock
from .leaderboard.markdown import readme_is_current, update_readme
from .leaderboard.report import regenerate
from .leaderboard.suite_changes import suite_changes
from .suites import DEFAULT_SUITE, RANKED_SUITE, list_suites

BOARD_SUITES = (DEFAULT_SUITE, RANKED_SUITE)   # what a shipped model needs for a complete board entry


def _shipped_hashes(name: str) -> dict[str, str]:
    """The sha256 of a shipped model's weight files, per role, as its card records them."""
    card = get_card(name)
    return {role: sources[0].sha256 for role, sources in (("mim", card.mim_sources),
                                                          ("classifier", card.classifier_sources))
            if sources and sources[0].sha256}


def _missing(out: Path, suites: list[str], datasets: Optional[Sequence[str]]) -> list[tuple[str, str]]:
    """Shipped models (zoo/weights/) whose board lacks a complete ranked run of a suite on their own dataset, holds
    one of an earlier definition of the suite (a † run), or holds one of other weights than the shipped ones (the
    model was retrained since: re-run with --replace)."""
    unknown = sorted(set(suites) - set(list_suites()))
    if unknown:
        raise EntryError(f"--missing {', '.join(unknown)}: no such suite (known: {', '.join(list_suites())})")
    by_dataset: dict[str, list[str]] = {}
    for name in shipped_models():
        by_dataset.setdefault(get_card(name).dataset, []).append(name)
    pairs = []
    for ds, models in sorted(by_dataset.items()):
        if datasets and ds not in datasets:
            continue
        stale = set()
        for e in read_entries(out, ds):
            if e["model"] not in models:
                continue
            other_weights = {k: v["sha256"] for k, v in e["checkpoints"].items()} != _shipped_hashes(e["model"])
            stale |= {(e["model"], s) for s, run in e["runs"].items()
                      if s in suites and (other_weights or suite_changes(run, ds))}
        absent = set(missing_runs(out, ds, models, suites))
        pairs += [(m, s) for m in models for s in suites if (m, s) in stale or (m, s) in absent]
    return pairs


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.report",
                                description="Regenerate the leaderboards (CSV, Markdown, HTML, plots) from entries.")
    p.add_argument("--out", default="leaderboards", help="leaderboard folder (default leaderboards/)")
    p.add_argument("--dataset", action="append", help="only this dataset (repeatable; default: all)")
    p.add_argument("--readme", default=None, help="also rewrite this README's leaderboard block")
    p.add_argument("--check", action="store_true",
                   help="with --readme: change nothing, exit 1 if the README's block is not the current board")
    p.add_argument("--missing", nargs="*", metavar="SUITE", default=None,
                   help="change nothing; print a 'MODEL SUITE' line for every model shipped in zoo/weights/ "
                        f"without a complete ranked run of each SUITE, or with one of an earlier definition of the "
                        f"suite or of other weights than the shipped ones (default: {' '.join(BOARD_SUITES)})")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if not out.is_dir():
            raise EntryError(f"--out {out}: {'not a folder' if out.exists() else 'no such board folder'}")
        known = datasets_with_entries(out)
        if not known:
            raise EntryError(f"--out {out}: no board there (no <dataset>/entries/ folder)")
        unknown = sorted(set(args.dataset or []) - set(known))
        if unknown:
            raise EntryError(f"--dataset {', '.join(unknown)}: no entries in {out} (it has {', '.join(known)})")
        if args.readme and not Path(args.readme).is_file():
            raise EntryError(f"--readme {args.readme}: no such file")
        if args.missing is not None:
            for model, suite in _missing(out, args.missing or list(BOARD_SUITES), args.dataset):
                print(model, suite)
            return 0
        if args.check:
            if not args.readme:
                raise EntryError("--check needs --readme")
            readme = Path(args.readme)
            if not readme_is_current(readme, out):
                print(f"{readme}: the leaderboard block is stale; run python -m benchmark.report --readme {readme}",
                      file=sys.stderr)
                return 1
            return 0
        with board_lock(out):
            for path in regenerate(out, args.dataset):
                print(f"wrote {path}")
            if args.readme:
                changed = update_readme(Path(args.readme), out)
                print(f"{'updated' if changed else 'unchanged'} {args.readme}")
    except (EntryError, FileNotFoundError, BoardLockTimeout, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
