"""torchrun support for the benchmark: which batches a rank computes, and gathering their records on rank 0.

Ranks take batches round-robin (batch i on rank i mod K); batches are fixed by sample id, so a sharded run
computes exactly the records of a single-process run, and rank 0 aggregates and writes them.
"""
from __future__ import annotations

from typing import Any

import torch.distributed as dist

from zoo.distributed import barrier, init_from_env, is_distributed, rank, world_size

__all__ = ["barrier", "broadcast", "gather_records", "init_from_env", "is_distributed", "rank", "shard", "world_size"]


def shard(items: list, rank_: int, world: int) -> list:
    """The items rank `rank_` of `world` computes (round-robin, so every rank gets a similar share)."""
    return items[rank_::world]


def gather_records(records: dict[Any, Any]) -> dict[Any, Any]:
    """Every rank's records merged on rank 0 (other ranks get theirs back); a no-op in one process."""
    if not is_distributed():
        return records
    parts: list = [None] * world_size() if rank() == 0 else None
    dist.gather_object(records, parts, dst=0)
    if rank() != 0:
        return records
    merged: dict[Any, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (what rank 0 computed once, e.g. a universal perturbation); a no-op in one
    process."""
    if not is_distributed():
        return obj
    box = [obj if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
