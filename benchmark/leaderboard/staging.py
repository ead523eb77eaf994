"""All-or-nothing updates of a dataset's board folder: an entry and every report land together, or none does.

`staged_update(out, dataset)` hands out a copy of `<out>/<dataset>` to write into (entries, examples, reports);
when the block ends without error the copy replaces the folder by two renames, otherwise it is deleted and the
board stays byte for byte as it was. A crash between the two renames (a window of microseconds) leaves the old
folder under a hidden name, which `recover` (run under the board lock before every update) puts back. The caller
holds the board lock.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

_STAGE_PREFIX = ".stage-"
_OLD_SUFFIX = ".previous"

__all__ = ["recover", "staged_update"]


def _old(out: Path, dataset: str) -> Path:
    return out / f".{dataset}{_OLD_SUFFIX}"


def recover(out: Path) -> None:
    """Undo what a crash left: a dataset folder swapped out but not yet replaced is put back; stale copies go."""
    out = Path(out)
    if not out.is_dir():
        return
    for old in out.glob(f".*{_OLD_SUFFIX}"):
        real = out / old.name[1:-len(_OLD_SUFFIX)]
        if real.exists():
            shutil.rmtree(old)            # the new folder made it: the old one is garbage
        else:
            os.replace(old, real)         # the new folder did not: the old one is the board
    for stage in out.glob(f"{_STAGE_PREFIX}*"):
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def staged_update(out: Path, dataset: str) -> Iterator[Path]:
    """A board folder `stage` whose `stage/<dataset>` starts as a copy of `out/<dataset>`; it becomes the board
    when the block ends without error."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recover(out)
    stage = out / f"{_STAGE_PREFIX}{secrets.token_hex(4)}"
    real = out / dataset
    try:
        stage.mkdir()
        if real.is_dir():
            shutil.copytree(real, stage / dataset)
        yield stage
        new = stage / dataset
        if real.is_dir():
            os.replace(real, _old(out, dataset))
            os.replace(new, real)
            shutil.rmtree(_old(out, dataset))
        else:
            os.replace(new, real)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
