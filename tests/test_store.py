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


def test_a_resumed_run_counts_the_time_of_the_records_it_reuses(tmp_path, monkeypatch):
    """Each record keeps the seconds its process spent on it; reading it back in a later process adds them to
    `reused_seconds` once, so a resumed run's entry reports the whole run's time, not only the resumed part."""
    import benchmark.runner.store as S
    clock = iter([100.0, 103.5, 110.0, 200.0, 250.0])
    monkeypatch.setattr(S.time, "time", lambda: next(clock))
    first = FileStore(tmp_path, "k")                 # opened at t=100
    first.put("c", "b0", {"v": [1]})                 # 3.5 s
    first.put("c", "b1", {"v": [2]})                 # 6.5 s
    assert first.reused_seconds == 0.0
    resumed = FileStore(tmp_path, "k")               # opened at t=200
    assert resumed.get("c", "b0") == {"v": [1]} and resumed.reused_seconds == 3.5
    resumed.get("c", "b0")                           # read twice, counted once
    assert resumed.get("c", "b1") == {"v": [2]} and resumed.reused_seconds == 10.0
    resumed.put("c", "b2", {"v": [3]})               # this process's own work: not reused
    assert resumed.get("c", "b2") == {"v": [3]} and resumed.reused_seconds == 10.0


def test_records_of_ranks_that_ran_side_by_side_count_their_time_once(tmp_path, monkeypatch):
    """Two ranks of a torchrun run each wrote their own file at the same time: a resumed run that reuses both
    files' records counts the longer rank's time (the wall time they took), not the two added up."""
    import benchmark.runner.store as S
    clock = iter([0.0, 0.0, 4.0, 5.0, 9.0, 10.0, 100.0])
    monkeypatch.setattr(S.time, "time", lambda: next(clock))
    rank0, rank1 = FileStore(tmp_path, "k", rank=0), FileStore(tmp_path, "k", rank=1)  # both opened at t=0
    rank0.put("c", "b0", {"v": [1]})                 # rank 0: 4 s
    rank1.put("c", "b1", {"v": [2]})                 # rank 1: 5 s
    rank0.put("c", "b2", {"v": [3]})                 # rank 0: 5 s more (9 s in all)
    rank1.put("c", "b3", {"v": [4]})                 # rank 1: 5 s more (10 s in all)
    resumed = FileStore(tmp_path, "k")               # opened at t=100, reads both files
    for batch in ("b0", "b1", "b2", "b3"):
        assert resumed.get("c", batch) is not None
    assert resumed.reused_seconds == 10.0            # the slower rank's wall time, not 19 s
