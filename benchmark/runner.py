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
from .attacks import gradient_masking as GM
from .attacks.checks import check_adversarial
from .attacks.downstream import build_downstream_attack
from .attacks.reconstruction import MIMRandomNoise, build_reconstruction_attack, mim_attack_loss
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
    gradient_masking: dict[str, Any] = field(default_factory=dict)
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
        self._memo: dict[tuple[str, str], torch.Tensor] = {}  # eps-independent raw attacks (CW), per batch

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
        attack = build_reconstruction_attack(mim, cell, seed=self.seed)
        x_adv = attack(x, mask, ids)
        check_adversarial(x_adv, x, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")
        return self._recon_record(mim, x, x_adv, mask, ids)

    def _recon_record(self, mim, x, x_adv, mask, ids) -> dict[str, list]:
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
            memo = (attack.memo_key(), self._batch_key(positions)) if attack.eps_independent else None
            raw = self._memo.get(memo) if memo else None
            if raw is None:
                raw = attack.run(xs, ys, ids[todo], self.seed)
                if memo:
                    self._memo[memo] = raw
            x_adv = attack.within_budget(raw, xs)
            check_adversarial(x_adv, xs, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")
            with torch.inference_mode():
                robust[todo] = (clf(x_adv).argmax(1) == ys).cpu()
        return {"sample_id": ids.tolist(), "correct": robust.float().tolist()}

    # -- gradient-masking checks (benchmark.attacks.gradient_masking), per-sample records through the store
    def _basic_checks(self, target: str, positions: torch.Tensor) -> dict[str, list]:
        x, y, ids = self._load(positions)
        if target == "downstream":
            model = self.bundle.require("classifier")
            loss_fn = lambda v: torch.nn.functional.cross_entropy(model(v), y, reduction="none")  # noqa: E731
            forward = model
        else:
            model = self.bundle.require("mim")
            mask = model.make_mask(ids, seed=self.seed).to(self.device)
            tokens = None
            if getattr(model, "family", "") == "beit":
                with torch.no_grad():
                    tokens = model.forward_mim(x, mask).pred.argmax(-1)
            loss_fn = lambda v: mim_attack_loss(model, v, x, mask, tokens)  # noqa: E731
            forward = lambda v: model.forward_mim(v, mask).pred  # noqa: E731
        return {"sample_id": ids.tolist(), "zero_gradient": GM.zero_gradient(loss_fn, x).tolist(),
                "randomized_forward": GM.randomized(forward, x).tolist()}

    def _budgets(self, target: str) -> dict[tuple[str, float], list[Cell]]:
        """White-box cells of a target grouped by budget (AutoAttack contains Square; masked-only is a control)."""
        out: dict[tuple[str, float], list[Cell]] = {}
        for c in self.cells:
            if c.target == target and c.impl != "autoattack" and c.scope != "masked":
                out.setdefault((c.norm, float(c.eps)), []).append(c)
        return out

    def _square_check(self, norm: str, eps: float, cells: list[Cell], positions: torch.Tensor,
                      records: list[dict]) -> dict[str, list]:
        clf = self.bundle.require("classifier")
        x, y, ids = self._load(positions)
        robust = torch.tensor([all(r["correct"][i] for r in records) for i in range(len(ids))], dtype=torch.bool)
        broken = torch.zeros(len(ids), dtype=torch.bool)
        todo = robust.nonzero().flatten()
        if len(todo):
            xs, ys = x[todo.to(self.device)], y[todo.to(self.device)]
            cell = Cell("downstream", "square", norm, eps, params=(("n_queries", GM.SQUARE_QUERIES),))
            x_adv = build_downstream_attack(clf, cell).perturb(xs, ys, ids[todo], self.seed)
            check_adversarial(x_adv, xs, eps, norm, what=f"square eps {eps:g}")
            with torch.inference_mode():
                broken[todo] = (clf(x_adv).argmax(1) != ys).cpu()
        return {"sample_id": ids.tolist(), "whitebox_robust": robust.tolist(), "square_broken": broken.tolist()}

    def _noise_check(self, norm: str, eps: float, positions: torch.Tensor) -> dict[str, list]:
        mim = self.bundle.require("mim")
        x, _, ids = self._load(positions)
        mask = mim.make_mask(ids, seed=self.seed).to(self.device)
        x_adv = MIMRandomNoise(mim, eps, norm=norm, samples=GM.NOISE_SAMPLES, seed=self.seed)(x, mask, ids)
        check_adversarial(x_adv, x, eps, norm, what=f"random noise eps {eps:g}")
        return self._recon_record(mim, x, x_adv, mask, ids)

    def _cached(self, key: str, positions: torch.Tensor, compute) -> dict[str, list]:
        bkey = self._batch_key(positions)
        rec = self.store.get(key, bkey)
        if rec is None:
            rec = compute()
            self.store.put(key, bkey, rec)
        return rec

    def _gradient_masking(self, batches: list[torch.Tensor], per_cell: dict[str, list[dict]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for target in self.targets:
            basic = [self._cached(f"gradient_masking|{target}|basic", pos, lambda p=pos: self._basic_checks(target, p))
                     for pos in batches]
            block = GM.summarise_basic(basic)
            block["black_box"] = []
            for (norm, eps), cells in sorted(self._budgets(target).items()):
                names = sorted({c.attack for c in cells})
                if target == "downstream" and not any(GM.is_reference(c.impl, c.steps) for c in cells):
                    block["black_box"].append(GM.skipped_square(norm, eps, names))
                elif target == "downstream":
                    key = (f"gradient_masking|square|{norm}|{eps!r}|q{GM.SQUARE_QUERIES}|"
                           + ",".join(c.key() for c in cells))
                    recs = [self._cached(key, pos, lambda p=pos, b=i: self._square_check(
                        norm, eps, cells, p, [per_cell[c.key()][b] for c in cells])) for i, pos in enumerate(batches)]
                    block["black_box"].append(GM.summarise_square(norm, eps, names, recs))
                else:
                    key = f"gradient_masking|noise|{norm}|{eps!r}|s{GM.NOISE_SAMPLES}"
                    recs = [self._cached(key, pos, lambda p=pos: self._noise_check(norm, eps, p)) for pos in batches]
                    metric, higher = ("mse", True)
                    if all(v is None for r in recs for v in r["mse"]):
                        metric, higher = ("token_agreement", False)
                    noise = [v for r in recs for v in r[metric]]
                    per_attack = [[v for r in per_cell[c.key()] for v in r[metric]] for c in cells]
                    pick = max if higher else min
                    best = [None if any(v is None for v in vals) else pick(vals) for vals in zip(*per_attack)]
                    block["black_box"].append(GM.summarise_noise(norm, eps, names, metric, higher, best, noise))
            out[target] = block
        flags = [m for t in self.targets for m in GM.flag_messages(t, out[t])]
        out["flags"] = flags
        out["suspected"] = bool(flags)
        return out

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
        bar.set_description(f"{self.model_name} gradient-masking checks")
        masking = self._gradient_masking(batches, per_cell)
        bar.close()
        result = self._aggregate(clean, per_cell, time.time() - started)
        result.gradient_masking = masking
        return result

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
