"""Running a suite on a model: clean pass once, every cell batch by batch, per-sample records, resume, sharding.

`Runner` (run.py) is the engine; `store` keeps per-(cell, batch) records so a run resumes; `distributed` shards
batches under torchrun; `validation` checks a model before a submission; `examples` re-attacks a few images for
the reports; `quality` measures a model's clean quality.
"""
from __future__ import annotations

from .run import CLEAN, MemoryStore, Runner, RunResult, attack_family

__all__ = ["CLEAN", "MemoryStore", "RunResult", "Runner", "attack_family"]
