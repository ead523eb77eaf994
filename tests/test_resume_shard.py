"""Resume and torchrun: a run killed half-way computes only what is missing on rerun, and a run sharded over
two processes, like a resumed one, writes exactly the tables of one uninterrupted process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import REPO

ARGS = ["--n-examples", "40", "--batch-size", "10", "--suite", "pgd", "--no-progress"]
TABLES = ("reconstruction.csv", "downstream.csv", "reconstruction.md", "downstream.md")


def _env(home: Path) -> dict:
    return dict(os.environ, MIMBENCH_HOME=str(home), OMP_NUM_THREADS="1")


def _bench(home: Path, out: Path, *extra: str, launcher: tuple = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *launcher, str(REPO / "run_bench.py"), *ARGS, "--out", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=_env(home), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _records(home: Path) -> list[tuple[str, str]]:
    keys = []
    for path in sorted((home / "runs").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            keys.append((rec["cell"], rec["batch"]))
    return keys


def _tables(out: Path) -> dict[str, str]:
    return {name: (out / "fashion_mnist" / name).read_text() for name in TABLES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted single-process run: its tables and how many records it stores."""
    home, out = tmp_path_factory.mktemp("home_ref"), tmp_path_factory.mktemp("out_ref")
    _bench(home, out)
    return _tables(out), len(_records(home))


def test_killed_run_resumes_with_only_the_missing_work(tmp_path, reference):
    tables, total = reference
    home, out = tmp_path / "home", tmp_path / "out"
    cmd = [sys.executable, str(REPO / "run_bench.py"), *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        files = list((home / "runs").glob("*.jsonl")) if (home / "runs").is_dir() else []
        if files and sum(f.read_text().count("\n") for f in files) >= total // 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = set(_records(home))
    assert 0 < len(done_before) < total
    killed_seconds = sum(json.loads(line)["seconds"] for path in (home / "runs").glob("*.jsonl")
                         for line in path.read_text().splitlines())
    assert not (out / "fashion_mnist" / "downstream.csv").exists()  # killed before writing any table

    resumed = _bench(home, out)
    assert "resuming:" in resumed.stderr
    after = _records(home)
    assert len(after) == len(set(after)) == total  # nothing computed twice, nothing missing
    assert done_before < set(after)
    assert _tables(out) == tables
    entry = json.loads(next((out / "fashion_mnist" / "entries").glob("*.json")).read_text())
    every_record = sum(json.loads(line)["seconds"] for path in (home / "runs").glob("*.jsonl")
                       for line in path.read_text().splitlines())
    # the killed process's time is counted: the entry's seconds cover every record, not only the resumed ones
    assert entry["runs"]["pgd"]["seconds"] >= round(every_record, 1) > round(killed_seconds, 1) > 0


def test_torchrun_two_processes_write_the_single_process_tables(tmp_path, reference):
    tables, total = reference
    home, out = tmp_path / "home", tmp_path / "out"
    _bench(home, out, launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))
    per_rank = [len(p.read_text().splitlines()) for p in sorted((home / "runs").glob("*.jsonl"))]
    assert len(per_rank) == 2 and all(n > 0 for n in per_rank)  # both ranks computed a share
    assert sum(per_rank) == total
    assert _tables(out) == tables
