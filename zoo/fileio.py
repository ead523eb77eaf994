"""Atomic file writes: the one helper every writer of mimbench uses (weights, cards, checkpoints, entries, plots).

A file is written to a temporary name beside its target, flushed to disk, given the permissions the umask
allows (as `open` would; `tempfile` alone would leave 0600) and renamed onto the target, so a reader sees the
old file or the new one, never half of one, and a crash leaves at most a hidden `.NAME.*.tmp*` file behind.
A download that must survive a kill writes to the stable hidden `partial_path` instead (so that the next run can
resume it) and `promote`s it onto the target once it is complete and checked.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "default_file_mode", "partial_path",
           "promote"]


def default_file_mode() -> int:
    """The mode `open(path, 'w')` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _temporary_name(path: Path) -> Path:
    """A hidden name beside `path` that keeps its suffix (writers such as matplotlib choose the format by it)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def partial_path(path: PathLike) -> Path:
    """The stable hidden name beside `path` that a resumable download grows (`.NAME.part`), never read as `path`."""
    path = Path(path)
    return path.with_name(f".{path.name}.part")


def promote(tmp: PathLike, path: PathLike) -> None:
    """Make the finished file `tmp` the content of `path`: flushed to disk, umask permissions, one atomic rename."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; it replaces `path` when the block ends without error.

    On error the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        promote(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see the module's docstring)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
