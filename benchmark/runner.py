"""Run a suite on one model: clean results once, then every cell, batch by batch, into per-sample records.

Batches are fixed by sample id (ids [kB, (k+1)B) of the evaluation order), so no number depends on how a run
is split, resumed or sharded. Rows are means of per-sample values.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from zoo.bundle import ModelBundle
from zoo.data import ImageDataset

from . import metrics as M
from .attacks.checks import check_adversarial
from .attacks.downstream import build_downstream_attack, run_seeded
from .attacks.reconstruction import RECONSTRUCTION_ATTACKS
from .suites import Cell, Suite

RECON_METRICS = ("mse", "psnr", "ssim", "lpips", "psnr_input", "token_agreement")
# Only when the model can compute them (BEiT with a user-supplied tokenizer); kept in the entry, not the CSV.
OPTIONAL_RECON_METRICS = ("token_accuracy",)
CLEAN = "clean"


class MemoryStore:
    """Per-(cell, batch) per-sample records kept in memory; the file store of a resumable run has this API."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, list]] = {}

    def get(self, cell_key: str, batch_key: str) -> Optional[dict[str, list]]:
        return self._data.get((cell_key, batch_key))

    def put(self, cell_key: str, batch_key: str, record: dict[str, list]) -> None:
        self._data[(cell_key, batch_key)] = record


@dataclass
class RunResult:
    model: str
    suite: str
    dataset: str
    n: int
    seed: int
    reconstruction: list[dict[str, Any]] = field(default_factory=list)
    downstream: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _mean(values: list) -> Optional[float]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(sum(vals) / len(vals)) if vals else None


class Runner:
    """Evaluates one bundle on one dataset subset with one suite."""

    def __init__(self, bundle: ModelBundle, data: ImageDataset, suite: Suite, cells: list[Cell], *,
                 model_name: str, batch_size: int = 100, seed: int = 0, device: torch.device | str = "cpu",
                 lpips: Optional[M.LPIPSStatus] = None, store=None, progress: bool = True) -> None:
        self.bundle, self.data, self.suite, self.cells = bundle, data, suite, cells
        self.model_name, self.batch_size, self.seed = model_name, batch_size, seed
        self.device = torch.device(device)
        self.lpips = lpips if lpips is not None else M.LPIPSStatus(None, "LPIPS not requested")
        self.store = store if store is not None else MemoryStore()
        self.progress = progress
        self.targets = sorted({c.target for c in cells})

    # -- batches fixed by sample id
    def batches(self) -> list[torch.Tensor]:
        idx = torch.arange(len(self.data))
        return [idx[i:i + self.batch_size] for i in range(0, len(self.data), self.batch_size)]

    def _batch_key(self, positions: torch.Tensor) -> str:
        ids = self.data.sample_ids[positions]
        return f"{int(ids[0])}-{int(ids[-1])}:{len(ids)}:seed{self.seed}"

    def _load(self, positions: torch.Tensor):
        x = self.data.images[positions].to(self.device)
        y = self.data.labels[positions].to(self.device)
        return x, y, self.data.sample_ids[positions]

    # -- clean pass, once per batch and reused by every cell
    def _clean(self, positions: torch.Tensor) -> dict[str, list]:
        key = self._batch_key(positions)
        cached = self.store.get(CLEAN, key)
        if cached is not None:
            return cached
        x, y, ids = self._load(positions)
        record: dict[str, list] = {"sample_id": ids.tolist()}
        with torch.inference_mode():
            if "downstream" in self.targets:
                logits = self.bundle.require("classifier")(x)
                record["correct"] = M.accuracy(logits, y).tolist()
            if "reconstruction" in self.targets:
                mim = self.bundle.require("mim")
                mask = mim.make_mask(ids, seed=self.seed).to(self.device)
                out = mim.forward_mim(x, mask)
                record.update(self._recon_metrics(mim, x, x, mask, out, clean_pred=out.pred, attacked=False))
        self.store.put(CLEAN, key, record)
        return record

    def _recon_metrics(self, mim, x_clean, x_in, mask, out, clean_pred, attacked: bool) -> dict[str, list]:
        n = x_clean.shape[0]
        none = [None] * n
        rec: dict[str, list] = {}
        if out.reconstruction is not None:
            p = mim.patch_size
            recon = out.reconstruction.float().clamp(0, 1)
            comp = M.composite(x_clean, recon, mask, p)
            rec["mse"] = M.masked_mse(recon, x_clean, mask, p).tolist()
            rec["psnr"] = M.masked_psnr(recon, x_clean, mask, p).tolist()
            rec["ssim"] = M.ssim(comp, x_clean).tolist()
            rec["lpips"] = self.lpips.fn(comp, x_clean).tolist() if self.lpips.available else none
        else:
            rec.update(mse=none, psnr=none, ssim=none, lpips=none)
        rec["psnr_input"] = M.psnr(x_in, x_clean).tolist() if attacked else none
        if getattr(mim, "family", "") == "beit":
            rec["token_agreement"] = M.token_agreement(clean_pred, out.pred, mask).tolist()
            if getattr(mim, "tokenizer", None) is not None:  # tokens of the clean image, as BEiT's targets
                rec["token_accuracy"] = M.token_accuracy(out.pred, mim.tokenizer(x_clean), mask).tolist()
        else:
            rec["token_agreement"] = none
        return rec

    # -- attacked cells
    def _attack_reconstruction(self, cell: Cell, positions: torch.Tensor) -> dict[str, list]:
        mim = self.bundle.require("mim")
        x, _, ids = self._load(positions)
        mask = mim.make_mask(ids, seed=self.seed).to(self.device)
        attack_cls = RECONSTRUCTION_ATTACKS[cell.impl]
        kwargs = dict(threat=cell.threat, scope=cell.scope, eot_samples=cell.eot_samples, seed=self.seed)
        if cell.impl != "fgsm":
            kwargs.update(steps=cell.steps, alpha=cell.alpha)
        attack = attack_cls(mim, cell.eps, norm=cell.norm, **kwargs)
        x_adv = attack(x, mask, ids)
        check_adversarial(x_adv, x, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")
        with torch.inference_mode():
            clean_pred = mim.forward_mim(x, mask).pred if getattr(mim, "family", "") == "beit" else None
            out = mim.forward_mim(x_adv, mask)
            rec = self._recon_metrics(mim, x, x_adv, mask, out, clean_pred, attacked=True)
        rec["sample_id"] = ids.tolist()
        return rec

    def _attack_downstream(self, cell: Cell, positions: torch.Tensor, clean: dict[str, list]) -> dict[str, list]:
        clf = self.bundle.require("classifier")
        x, y, ids = self._load(positions)
        correct = torch.tensor(clean["correct"], dtype=torch.bool)
        robust = torch.zeros(len(ids), dtype=torch.bool)
        todo = correct.nonzero().flatten()
        if len(todo):  # a sample wrong on clean input is not robust: no need to attack it
            xs, ys = x[todo.to(self.device)], y[todo.to(self.device)]
            attack = build_downstream_attack(clf, cell)
            x_adv = run_seeded(attack, xs, ys, ids[todo], self.seed)
            check_adversarial(x_adv, xs, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")
            with torch.inference_mode():
                robust[todo] = (clf(x_adv).argmax(1) == ys).cpu()
        return {"sample_id": ids.tolist(), "correct": robust.float().tolist()}

    # -- the whole run
    def run(self) -> RunResult:
        started = time.time()
        batches = self.batches()
        if "downstream" in self.targets:
            self.bundle.require("classifier")
        if "reconstruction" in self.targets:
            self.bundle.require("mim")
        total = len(batches) * (1 + len(self.cells))
        bar = tqdm(total=total, desc=f"{self.model_name} clean", unit="batch", disable=not self.progress,
                   dynamic_ncols=True)
        clean = []
        for pos in batches:
            clean.append(self._clean(pos))
            bar.update(1)
        per_cell: dict[str, list[dict[str, list]]] = {}
        for cell in self.cells:
            bar.set_description(f"{self.model_name} {cell.target[:5]} {cell.attack} {cell.norm} {cell.eps:g}")
            records = []
            for pos, clean_rec in zip(batches, clean):
                key = self._batch_key(pos)
                rec = self.store.get(cell.key(), key)
                if rec is None:
                    if cell.target == "reconstruction":
                        rec = self._attack_reconstruction(cell, pos)
                    else:
                        rec = self._attack_downstream(cell, pos, clean_rec)
                    self.store.put(cell.key(), key, rec)
                records.append(rec)
                bar.update(1)
            per_cell[cell.key()] = records
        bar.close()
        return self._aggregate(clean, per_cell, time.time() - started)

    def _aggregate(self, clean: list[dict], per_cell: dict[str, list[dict]], seconds: float) -> RunResult:
        n = len(self.data)
        res = RunResult(self.model_name, self.suite.name, self.data.name, n, self.seed, seconds=seconds)
        base = {"model": self.model_name, "suite": self.suite.name}

        def merged(records: list[dict], key: str) -> list:
            return [v for r in records for v in r[key]]

        def optional(records: list[dict]) -> dict[str, Optional[float]]:
            return {m: _mean(merged(records, m)) for m in OPTIONAL_RECON_METRICS if all(m in r for r in records)}

        if "downstream" in self.targets:
            res.downstream.append({**base, "attack": "none", "norm": "none", "eps": 0.0, "n": n,
                                   "accuracy": _mean(merged(clean, "correct"))})
        if "reconstruction" in self.targets:
            res.reconstruction.append({**base, "attack": "none", "norm": "none", "eps": 0.0, "n": n,
                                       **{m: _mean(merged(clean, m)) for m in RECON_METRICS}, **optional(clean)})
            if not self.lpips.available:
                res.unavailable["lpips"] = self.lpips.reason
        for cell in self.cells:
            recs = per_cell[cell.key()]
            row = {**base, "attack": cell.attack, "norm": cell.norm, "eps": float(cell.eps), "n": n}
            if cell.target == "downstream":
                res.downstream.append({**row, "accuracy": _mean(merged(recs, "correct"))})
            else:
                res.reconstruction.append({**row, **{m: _mean(merged(recs, m)) for m in RECON_METRICS},
                                           **optional(recs)})
            res.cells.append(cell.to_dict())
        return res
