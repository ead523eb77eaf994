"""torch.distributed for the trainer: DDP wrapping on top of the shared basics of `zoo.distributed`."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..distributed import barrier, init_from_env, is_distributed, rank, world_size

__all__ = ["barrier", "init_from_env", "is_distributed", "rank", "unwrap", "world_size", "wrap"]


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
