"""torch.distributed basics shared by the trainer and the benchmark: a no-op in one process, a process group
under torchrun (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["barrier", "init_from_env", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def barrier() -> None:
    if is_distributed():
        dist.barrier()
