"""The resumable record store: torn lines, reloads, and what makes a stored run reusable (or not)."""
from __future__ import annotations

import json

from benchmark.runner.store import FileStore, store_key


def test_a_torn_last_line_is_dropped_and_the_next_record_survives(tmp_path):
    store = FileStore(tmp_path, "k")
    store.put("cell", "b0", {"correct": [1.0, 0.0]})
    store.put("cell", "b1", {"correct": [0.0]})
    with open(store.path, "a") as f:           # a kill in the middle of writing b2
        f.write('{"format": 1, "cell": "cell", "batch": "b2", "values": {"corr')
    resumed = FileStore(tmp_path, "k")
    assert resumed.get("cell", "b0") == {"correct": [1.0, 0.0]} and resumed.get("cell", "b2") is None
    assert len(resumed) == 2
    resumed.put("cell", "b2", {"correct": [1.0]})   # recomputed after the kill
    again = FileStore(tmp_path, "k")
    assert again.get("cell", "b2") == {"correct": [1.0]} and len(again) == 3
    assert all(json.loads(line) for line in store.path.read_text().splitlines())


def test_every_rank_reads_every_file(tmp_path):
    FileStore(tmp_path, "k", rank=0).put("c", "b0", {"v": [1]})
    FileStore(tmp_path, "k", rank=1).put("c", "b1", {"v": [2]})
    assert len(FileStore(tmp_path, "k", rank=0)) == 2


def test_the_key_covers_what_determines_the_numbers():
    base = {"checkpoints": {"mim": "a" * 64}, "seed": 0, "code": "abc"}
    assert store_key(base) == store_key(dict(reversed(list(base.items()))))  # order-free
    for change in ({"seed": 1}, {"code": "abd"}, {"checkpoints": {"mim": "b" * 64}}):
        assert store_key({**base, **change}) != store_key(base)
