"""The training loop shared by every stage: schedule, progress bar, CSV log, per-epoch checkpoints, resume.

Batches are a pure function of (seed, epoch), so a run resumed from its last epoch checkpoint continues
with exactly the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
from timm.scheduler import CosineLRScheduler
from tqdm.auto import tqdm

from ..data import ImageDataset
from ..fileio import atomic_path, atomic_write_text
from . import distributed as dist_utils
from .recipes import StageConfig

StepFn = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class StageResult:
    """How far a stage got; `seconds` is its whole training time, summed over resumed runs."""

    steps: int
    epochs_done: float
    seconds: float
    last_loss: float
    complete: bool


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class CsvLog:
    """Append-only CSV of training losses, one file per stage."""

    def __init__(self, path: Path) -> None:
        self.path, self._fields = path, None

    def write(self, row: dict[str, Any]) -> None:
        if self._fields is None:
            self._fields = list(row)
            new = not self.path.exists()
            if not new:
                with open(self.path) as f:
                    header = f.readline().strip().split(",")
                if header != self._fields:
                    self.path.rename(self.path.with_suffix(".old.csv"))
                    new = True
            if new:
                with open(self.path, "w", newline="") as f:
                    csv.writer(f).writerow(self._fields)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self._fields])

    def drop_after(self, step: int) -> None:
        """Remove the rows of steps after `step`: a run killed after its last checkpoint logged steps that the
        resumed run computes again, and the log must hold each step once."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        header = lines[0].strip().split(",") if lines else []
        if "step" not in header:
            return
        col = header.index("step")
        kept = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(float(ln.split(",")[col])) <= step]
        if len(kept) != len(lines):
            atomic_write_text(self.path, "".join(kept))


def autocast_enabled(cfg: StageConfig, device: torch.device) -> bool:
    """Whether the stage runs under bf16 autocast on this device (`StageConfig.amp`)."""
    return cfg.amp == "bf16" or (cfg.amp == "cuda" and device.type == "cuda")


def _explicit_attention(model: nn.Module) -> list[nn.Module]:
    """Switch timm's attention modules from the fused kernel to the explicit matmul-softmax-matmul path and return
    the ones switched: on the CPU the fused kernel's bf16 backward costs ~10x the explicit path's (measured on this
    project's ViT-T). The caller switches them back, so evaluation runs the models as they ship."""
    switched = [m for m in model.modules() if getattr(m, "fused_attn", False) is True]
    for m in switched:
        m.fused_attn = False
    return switched


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Index batches of one epoch (drop-last), shuffled by (seed, epoch); each rank takes its share."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    global_bs = batch_size * world
    steps = n // global_bs
    perm = perm[: steps * global_bs].view(steps, world, batch_size)
    return perm[:, rank, :]


def train_stage(name: str, model: nn.Module, param_groups: list[dict], cfg: StageConfig, data: ImageDataset,
                step_fn: StepFn, out_dir: Path, seed: int, device: torch.device,
                max_steps: Optional[int] = None, resume: bool = False, log_every: int = 20) -> StageResult:
    """Run one stage (AdamW + warmup/cosine per step) and checkpoint at every epoch end."""
    rank, world = dist_utils.rank(), dist_utils.world_size()
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / f"{name}.pt"
    steps_per_epoch = len(data) // (cfg.batch_size * world)
    if steps_per_epoch == 0:
        raise ValueError(f"{name}: dataset of {len(data)} samples is smaller than one batch")
    total = max(1, int(round(cfg.epochs * steps_per_epoch)))
    planned = total if max_steps is None else min(total, max_steps)
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, betas=tuple(cfg.betas))
    scheduler = CosineLRScheduler(optimizer, t_initial=total, lr_min=cfg.min_lr,
                                  warmup_t=int(cfg.warmup_epochs * steps_per_epoch), warmup_lr_init=cfg.lr * 1e-3,
                                  t_in_epochs=False)
    step, earlier_seconds = 0, 0.0  # seconds spent by the runs this one resumes
    fingerprint = json.dumps(asdict(cfg), sort_keys=True, default=str) + f"|seed={seed}|world={world}"
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state.get("config", fingerprint) != fingerprint:  # checkpoints without one predate the check
            raise ValueError(f"{ckpt_path}: written by a different {name} configuration; remove it (or the "
                             f"output folder) to start this stage again")
        dist_utils.unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        step, earlier_seconds = int(state["step"]), float(state.get("seconds", 0.0))
        if state.get("complete") or step >= planned:
            return StageResult(step, step / steps_per_epoch, earlier_seconds, float(state.get("last_loss", math.nan)),
                               bool(state.get("complete")))
    log = CsvLog(out_dir / f"log_{name}.csv") if rank == 0 else None
    if log is not None:
        log.drop_after(step)
    model.train()
    last_loss, t0 = math.nan, time.time()
    bar = tqdm(total=planned, initial=step, desc=f"{name}", unit="step", disable=rank != 0, dynamic_ncols=True)
    running: dict[str, torch.Tensor] = {}
    window = 0
    amp = autocast_enabled(cfg, device)
    restore = _explicit_attention(model) if amp and device.type == "cpu" else []
    try:
        while step < planned:
            epoch = step // steps_per_epoch
            batches = epoch_batches(len(data), cfg.batch_size, seed, epoch, rank, world)
            for idx in batches[step - epoch * steps_per_epoch:]:
                scheduler.step_update(step)
                x = data.images[idx].to(device, non_blocking=True)
                y = data.labels[idx].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss, extra = step_fn(x, y, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                step += 1
                window += 1
                for k, v in {"loss": loss.detach(), **extra}.items():
                    running[k] = running.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else torch.tensor(float(v)))
                if step % log_every == 0 or step == planned or step % steps_per_epoch == 0:
                    means = {k: float(v) / window for k, v in running.items()}
                    running, window = {}, 0
                    last_loss = means["loss"]
                    if log is not None:
                        log.write({"epoch": round(step / steps_per_epoch, 4), "step": step,
                                   "lr": optimizer.param_groups[0]["lr"], **means, "seconds": round(time.time() - t0, 2)})
                    bar.set_postfix(loss=f"{last_loss:.4f}", refresh=False)
                bar.update(1)
                if step % steps_per_epoch == 0 or step == planned:
                    if rank == 0:
                        _atomic_save({"model": dist_utils.unwrap(model).state_dict(),
                                      "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                                      "step": step, "complete": step >= total, "last_loss": last_loss,
                                      "config": fingerprint, "seconds": earlier_seconds + time.time() - t0}, ckpt_path)
                    dist_utils.barrier()
                if step >= planned:
                    break
    finally:
        for module in restore:
            module.fused_attn = True
    bar.close()
    model.eval()
    return StageResult(step, step / steps_per_epoch, earlier_seconds + time.time() - t0, last_loss, step >= total)
