"""The board lock: one writer at a time per leaderboard folder (entries, examples, reports), across processes."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_NAME = ".board.lock"
LOCK_TIMEOUT = 900.0      # seconds a writer waits for another one (regenerating reports takes seconds)


class BoardLockTimeout(RuntimeError):
    """Another writer held the board for longer than the timeout."""


@contextlib.contextmanager
def board_lock(out: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Serialise writers of one leaderboard folder (entries, examples, reports) across processes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise BoardLockTimeout(f"{out / LOCK_NAME}: another run has been writing this board for over {timeout:.0f} s; "
                              f"try again, or remove the lock file if no mimbench process is running") from None
    try:
        yield
    finally:
        lock.release()
