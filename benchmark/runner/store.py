"""Append-only, fsynced store of per-sample results, so a killed run resumes where it stopped.

One JSON line per (cell, batch): the cell's full specification key, the batch key (its sample ids and the
seed) and the per-sample values. The file is keyed by what determines the numbers (the model's checkpoint
hashes, the dataset, the code version), so a rerun of the same command reads back what is done and
computes only what is missing. A torn last line (a kill in the middle of a write) is ignored.
Under torchrun every rank appends to its own file; every rank reads all of them. Each record also keeps the wall
time its process spent since its previous record, so a resumed run can count the time of the parts it reuses. The
ranks of a run work side by side, so the reused time is the largest per-file sum, not the sum over all files.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

STORE_FORMAT = 1


def store_key(parts: dict[str, Any]) -> str:
    """A short stable hash of everything that determines a run's numbers."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


class FileStore:
    """Per-(cell, batch) records on disk; `get` / `put` as MemoryStore, `put` durable before it returns."""

    def __init__(self, folder: Path, key: str, rank: int = 0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key, self.rank = key, rank
        self.path = self.folder / f"{key}.rank{rank}.jsonl"
        self._data: dict[tuple[str, str], dict[str, list]] = {}
        # seconds of records written by earlier processes, with the rank file that holds each
        self._earlier: dict[tuple[str, str], tuple[str, float]] = {}
        self._reused_by_file: dict[str, float] = {}        # their per-file sums over the records read so far
        self._drop_torn_tail()
        self.reload()
        self._clock = time.time()

    def _drop_torn_tail(self) -> None:
        """Cut a torn last line (a kill in the middle of a write) off this rank's file, so the next record
        appended starts on a line of its own instead of being glued to the fragment (and lost with it)."""
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def reload(self) -> None:
        """Read every rank's file of this key (records of other ranks appear once they are written)."""
        for path in sorted(self.folder.glob(f"{self.key}.rank*.jsonl")):
            with open(path) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # torn write at a kill: the record is recomputed
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if rec.get("format") == STORE_FORMAT:
                        self._data[(rec["cell"], rec["batch"])] = rec["values"]
                        self._earlier.setdefault((rec["cell"], rec["batch"]),
                                                 (path.name, float(rec.get("seconds", 0.0))))

    def restart_clock(self) -> None:
        """Start timing the next record now (a run calls it as it starts: loading is no record's time)."""
        self._clock = time.time()

    @property
    def reused_seconds(self) -> float:
        """Wall time earlier processes spent on the records read so far: the largest per-rank-file sum, since
        the ranks that wrote those files ran side by side (summing the files would count that time once per rank)."""
        return max(self._reused_by_file.values(), default=0.0)

    def get(self, cell_key: str, batch_key: str) -> Optional[dict[str, list]]:
        """The stored record, or None; a record of an earlier process counts its seconds once, to its rank file."""
        earlier = self._earlier.pop((cell_key, batch_key), None)
        if earlier is not None:
            name, seconds = earlier
            self._reused_by_file[name] = self._reused_by_file.get(name, 0.0) + seconds
        return self._data.get((cell_key, batch_key))

    def put(self, cell_key: str, batch_key: str, record: dict[str, list]) -> None:
        now = time.time()
        line = json.dumps({"format": STORE_FORMAT, "cell": cell_key, "batch": batch_key, "values": record,
                           "seconds": round(now - self._clock, 3)})
        self._clock = now
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._data[(cell_key, batch_key)] = record

    def records(self) -> dict[tuple[str, str], dict[str, list]]:
        return dict(self._data)

    def merge(self, records: dict[tuple[str, str], dict[str, list]]) -> None:
        """Records computed by other ranks (already in their own files): kept in memory only."""
        self._data.update(records)

    def __len__(self) -> int:
        return len(self._data)
