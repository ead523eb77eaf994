"""Run a suite on one model: clean results once, then every cell, batch by batch, into per-sample records.

Batches are fixed by sample id (ids [kB, (k+1)B) of the evaluation order), so no number depends on how a run
is split, resumed or sharded. Rows are means of per-sample values.

Compute goes only where it changes a number: the clean pass runs once per batch and every cell reuses it; a
sample wrong on clean input is not attacked; iterative attacks stop on samples already broken; a sample broken
at a smaller eps of the same white-box attack is not attacked again at a larger one (its adversarial image lies in
the larger ball too). Records go to a store as each (cell, batch) finishes (a FileStore makes the run resumable).
Under torchrun each rank computes its share of the batches; rank 0 gathers the records and aggregates.

Beyond white-box cells (a cell's `source`): a transfer cell crafts its perturbation on the other model of the
bundle (the pretrained MIM model for the classifier, the classifier for the reconstruction) and is evaluated on its
target; a universal cell adds one perturbation, crafted once on the training split and kept in the store, to every
image; a corruption cell evaluates the images under an ImageNet-C corruption (accuracy on the corrupted image, as
RobustBench counts it). None of them reuses the smaller budgets' breaks: a sample broken by one budget's transfer or
universal perturbation was broken by another perturbation than the larger budget's.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from zoo.bundle import ModelBundle
from zoo.data import ImageDataset

from .. import metrics as M
from ..attacks import attack_registry, build_attack
from ..attacks import gradient_masking as GM
from ..attacks.checks import check_adversarial
from ..attacks.reconstruction import MIMRandomNoise, mim_attack_loss
from ..corruptions.apply import corrupt_batch
from ..suites import Cell, Suite, row_label
from . import distributed as D

BLACK_BOX = ("autoattack", "square")   # attacks that are (or contain) the black-box check itself
RECON_METRICS = ("mse", "psnr", "ssim", "lpips", "psnr_input", "token_agreement")
# Only when the model can compute them (BEiT with a user-supplied tokenizer); kept in the entry, not the CSV.
OPTIONAL_RECON_METRICS = ("token_accuracy",)
CLEAN = "clean"


class MemoryStore:
    """Per-(cell, batch) per-sample records kept in memory; the file store of a resumable run has this API."""

    reused_seconds = 0.0        # nothing of an earlier process is reused in memory

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, list]] = {}

    def restart_clock(self) -> None:
        pass

    def get(self, cell_key: str, batch_key: str) -> Optional[dict[str, list]]:
        return self._data.get((cell_key, batch_key))

    def put(self, cell_key: str, batch_key: str, record: dict[str, list]) -> None:
        self._data[(cell_key, batch_key)] = record

    def records(self) -> dict[tuple[str, str], dict[str, list]]:
        return dict(self._data)

    def merge(self, records: dict[tuple[str, str], dict[str, list]]) -> None:
        """Records computed elsewhere (other ranks), kept in memory only."""
        self._data.update(records)


def attack_family(cell: Cell) -> str:
    """A cell's key without its budget: cells of one family differ only in eps (and the step size that follows)."""
    return replace(cell, eps=0.0, alpha=0.0).key()


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
    # Per-sample values in sample-id order, per target and row ("clean" or "attack|norm|eps"): downstream
    # `correct` (robust) flags; reconstruction every metric of RECON_METRICS. The entry keeps what it needs.
    per_sample: dict[str, dict[str, dict[str, list]]] = field(default_factory=dict)
    # The universal perturbations of the run (row label without the target -> C x H x W) and how they were made.
    universal: dict[str, torch.Tensor] = field(default_factory=dict)
    universal_settings: dict[str, Any] = field(default_factory=dict)


def is_white_box(cell: Cell) -> bool:
    """A per-sample attack crafted on the target's own model (what the gradient-masking checks compare against,
    and the only kind whose smaller budgets' breaks count at larger ones)."""
    return cell.source == "self" and cell.impl != "universal"


def roles_needed(cell: Cell) -> set[str]:
    """The bundle's models a cell runs: its target's, and the one that crafts its perturbation."""
    roles = {"classifier" if cell.target == "downstream" else "mim"}
    if cell.source == "mim" or cell.impl == "universal":
        roles.add("mim")
    if cell.source == "classifier":
        roles.add("classifier")
    return roles


def universal_key(cell: Cell) -> str:
    """The identity of a universal perturbation: its crafting settings and budget, not the target it is evaluated
    on (both targets share one perturbation per budget and loss)."""
    return replace(cell, target="reconstruction", attack="universal", source="self").key()


def _mean(values: list) -> Optional[float]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(sum(vals) / len(vals)) if vals else None


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass


class Runner:
    """Evaluates one bundle on one dataset subset with one suite."""

    def __init__(self, bundle: ModelBundle, data: ImageDataset, suite: Suite, cells: list[Cell], *,
                 model_name: str, batch_size: int = 100, seed: int = 0, device: torch.device | str = "cpu",
                 lpips: Optional[M.LPIPSStatus] = None, store=None, progress: bool = True,
                 early_stop: bool = True, checks: bool = True, train_data: Optional[ImageDataset] = None) -> None:
        """`early_stop` False: every attacked sample runs every step (torchattacks' numbers exactly);
        `checks` False: no gradient-masking checks (only for timing the attacks alone: entries need them);
        `train_data`: the training split universal perturbations are crafted on (needed only by universal cells)."""
        self.bundle, self.data, self.suite, self.cells = bundle, data, suite, cells
        self.train_data = train_data
        self._deltas: dict[str, torch.Tensor] = {}   # universal perturbations by `universal_key`
        self.early_stop, self.checks = early_stop, checks
        self.model_name, self.batch_size, self.seed = model_name, batch_size, seed
        self.device = torch.device(device)
        self.lpips = lpips if lpips is not None else M.LPIPSStatus(None, "LPIPS not requested")
        self.store = store if store is not None else MemoryStore()
        self.progress = progress
        self.targets = sorted({c.target for c in cells})
        self._memo: dict[tuple[str, str], torch.Tensor] = {}  # eps-independent raw attacks (CW), per batch
        self._bar: Any = _NoBar()

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
        x, y, ids = self._load(positions)
        mask = mim.make_mask(ids, seed=self.seed).to(self.device)
        if cell.source == "self" and cell.impl != "universal":
            x_adv = build_attack(mim, cell, seed=self.seed)(x, mask, ids)
            self._check(cell, x_adv, x)
        else:
            x_adv = self._perturb(cell, x, y, ids)
        return self._recon_record(mim, x, x_adv, mask, ids)

    def _check(self, cell: Cell, x_adv: torch.Tensor, x: torch.Tensor) -> None:
        """Every image in [0, 1] and, for a perturbation, within its budget (a corruption has no budget)."""
        if cell.is_corruption:
            check_adversarial(x_adv, x, math.inf, "Linf", what=f"{cell.attack} severity {cell.eps:g}")
        else:
            check_adversarial(x_adv, x, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")

    def _perturb(self, cell: Cell, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The images of a cell that is not a white-box attack on its target, checked: a corruption, the universal
        perturbation added, or a perturbation crafted on the bundle's other model (transfer)."""
        if cell.is_corruption:
            x_adv = corrupt_batch(x, cell.attack, int(cell.eps), ids, seed=self.seed)
        elif cell.impl == "universal":
            x_adv = (x + self._universal_delta(cell).to(device=x.device, dtype=x.dtype)).clamp(0, 1)
        elif cell.source == "mim":   # crafted on the pretrained MIM model, labels unseen
            mim = self.bundle.require("mim")
            mask = mim.make_mask(ids, seed=self.seed).to(self.device)
            x_adv = build_attack(mim, cell, seed=self.seed)(x, mask, ids)
        elif cell.source == "classifier":   # white-box PGD on the classifier, every step (no early stop)
            clf = self.bundle.require("classifier")
            stops_early = attack_registry("downstream").get(cell.impl).stops_early
            attack = build_attack(clf, cell, seed=self.seed, **({"early_stop": False} if stops_early else {}))
            x_adv = attack.perturb(x, y, ids)
        else:
            raise ValueError(f"cell {cell.key()} is a white-box attack of its target")
        self._check(cell, x_adv, x)
        return x_adv

    def _universal_delta(self, cell: Cell) -> torch.Tensor:
        """The cell's universal perturbation: from memory, else the store, else crafted on the training split and
        stored, so a resumed or repeated run reuses it. Under torchrun every rank calls this for every universal
        cell at the start of the run (`_prepare_universal`): rank 0 reads or crafts, the others receive its copy."""
        key = universal_key(cell)
        if key in self._deltas:
            return self._deltas[key]
        store_key, batch_key = f"universal|{key}", f"perturbation:seed{self.seed}"
        rec = self.store.get(store_key, batch_key) if D.rank() == 0 else None
        if rec is None and D.rank() == 0:
            if self.train_data is None:
                raise ValueError(f"cell {cell.attack}: a universal perturbation is crafted on the training split, "
                                 f"and this run has none (Runner(train_data=...))")
            self._bar.set_description(f"{self.model_name} crafting {cell.attack} {cell.norm} {cell.eps:g}")
            mim = self.bundle.require("mim")
            attack = build_attack(mim, replace(cell, target="reconstruction", source="self"), seed=self.seed)
            delta = attack.craft(self.train_data.images, self.train_data.sample_ids).float().cpu()
            rec = {"shape": list(delta.shape), "delta": delta.flatten().tolist()}
            self.store.put(store_key, batch_key, rec)
        rec = D.broadcast(rec)
        delta = torch.tensor(rec["delta"], dtype=torch.float32).view(*rec["shape"]).to(self.device)
        self._deltas[key] = delta
        return delta

    def _prepare_universal(self) -> None:
        """Every universal perturbation of the suite, in the suite's order, before the batches are computed."""
        for cell in self.cells:
            if cell.impl == "universal":
                self._universal_delta(cell)

    def _recon_record(self, mim, x, x_adv, mask, ids) -> dict[str, list]:
        with torch.inference_mode():
            clean_pred = mim.forward_mim(x, mask).pred if getattr(mim, "family", "") == "beit" else None
            out = mim.forward_mim(x_adv, mask)
            rec = self._recon_metrics(mim, x, x_adv, mask, out, clean_pred, attacked=True)
        rec["sample_id"] = ids.tolist()
        return rec

    def _attack_downstream(self, cell: Cell, positions: torch.Tensor, clean: dict[str, list],
                           smaller: list[dict[str, list]]) -> dict[str, list]:
        """Robust or not per sample; `smaller`: this batch's records of the same attack at smaller budgets."""
        clf = self.bundle.require("classifier")
        x, y, ids = self._load(positions)
        if cell.is_corruption:   # accuracy on the corrupted image, whatever the clean prediction (RobustBench)
            x_c = self._perturb(cell, x, y, ids)
            with torch.inference_mode():
                correct = (clf(x_c).argmax(1) == y).cpu()
            return {"sample_id": ids.tolist(), "correct": correct.float().tolist()}
        standing = torch.tensor(clean["correct"], dtype=torch.bool)  # wrong on clean input: not robust
        for rec in smaller:  # broken within a smaller ball: broken within this one
            standing &= torch.tensor(rec["correct"], dtype=torch.bool)
        robust = torch.zeros(len(ids), dtype=torch.bool)
        todo = standing.nonzero().flatten()
        if len(todo) and not is_white_box(cell):   # transfer or universal: the perturbation comes from elsewhere
            xs, ys = x[todo.to(self.device)], y[todo.to(self.device)]
            x_adv = self._perturb(cell, xs, ys, ids[todo])
            with torch.inference_mode():
                robust[todo] = (clf(x_adv).argmax(1) == ys).cpu()
        elif len(todo):
            xs, ys = x[todo.to(self.device)], y[todo.to(self.device)]
            stops_early = attack_registry("downstream").get(cell.impl).stops_early  # --no-early-stop turns it off
            options = {"early_stop": self.early_stop} if stops_early else {}
            attack = build_attack(clf, cell, seed=self.seed, **options)
            if attack.eps_independent:  # one raw run per batch serves every budget: the rows of this cell's todo
                last = not any(attack_family(c) == attack_family(cell) and c.eps > cell.eps for c in self.cells)
                raw = self._eps_independent_raw(attack, cell, positions, clean, release=last)[todo.to(self.device)]
            else:
                raw = attack(xs, ys, ids[todo])
            x_adv = attack.within_budget(raw, xs)
            check_adversarial(x_adv, xs, cell.eps, cell.norm, what=f"{cell.attack} eps {cell.eps:g}")
            with torch.inference_mode():
                robust[todo] = (clf(x_adv).argmax(1) == ys).cpu()
        return {"sample_id": ids.tolist(), "correct": robust.float().tolist()}

    def _eps_independent_raw(self, attack, cell: Cell, positions: torch.Tensor, clean: dict[str, list],
                             release: bool) -> torch.Tensor:
        """The raw result of an attack whose images do not depend on eps (CW), for the whole batch: computed once
        on the samples correct on clean input (the others keep their clean image) and reused at every budget;
        `release` (the family's largest budget) drops it from memory, so memory stays flat in n."""
        memo = (replace(cell, eps=0.0, attack="").key(), self._batch_key(positions))
        if memo not in self._memo:
            x, y, ids = self._load(positions)
            ok = torch.tensor(clean["correct"], dtype=torch.bool).nonzero().flatten()
            raw = x.clone()
            if len(ok):
                raw[ok.to(self.device)] = attack(x[ok.to(self.device)], y[ok.to(self.device)], ids[ok])
            self._memo[memo] = raw
        return self._memo.pop(memo) if release else self._memo[memo]

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
        """White-box cells of a target grouped by budget (AutoAttack and Square are black-box or contain it;
        masked-only is a control)."""
        out: dict[tuple[str, float], list[Cell]] = {}
        for c in self.cells:
            if c.target == target and is_white_box(c) and c.impl not in BLACK_BOX and c.scope != "masked":
                out.setdefault((c.norm, float(c.eps)), []).append(c)
        return out

    def _suite_square(self, norm: str, eps: float) -> Optional[Cell]:
        return next((c for c in self.cells if c.target == "downstream" and c.impl == "square" and c.norm == norm
                     and float(c.eps) == eps), None)

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
            x_adv = build_attack(clf, cell, seed=self.seed).perturb(xs, ys, ids[todo])
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
        self._bar.update(1)
        return rec

    def _check_units(self, batches: list[torch.Tensor]) -> int:
        """How many (check, batch) records the gradient-masking checks compute: part of the progress bar's total."""
        if not self.checks:
            return 0
        units = 0
        for target in self.targets:
            units += len(batches)
            for (norm, eps), cells in self._budgets(target).items():
                if target == "reconstruction":
                    units += len(batches)
                elif self._suite_square(norm, eps) is None and any(GM.is_reference(c.impl, c.steps) for c in cells):
                    units += sum(1 for pos in batches if int(pos[0]) < GM.SQUARE_SAMPLES)
        return units

    def _gradient_masking(self, batches: list[torch.Tensor], per_cell: dict[str, list[dict]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for target in self.targets:
            basic = [self._cached(f"gradient_masking|{target}|basic", pos, lambda p=pos: self._basic_checks(target, p))
                     for pos in batches]
            block = GM.summarise_basic(basic)
            block["black_box"] = []
            for (norm, eps), cells in sorted(self._budgets(target).items()):
                names = sorted({c.attack for c in cells})
                square = self._suite_square(norm, eps) if target == "downstream" else None
                if square is not None:  # the suite's own Square (the cascade's last step) is the evidence
                    recs = [{"sample_id": wb[0]["sample_id"],
                             "whitebox_robust": [all(r["correct"][i] for r in wb) for i in range(len(wb[0]["correct"]))],
                             "square_broken": [all(r["correct"][i] for r in wb) and not sq["correct"][i]
                                               for i in range(len(sq["correct"]))]}
                            for wb, sq in zip(zip(*[per_cell[c.key()] for c in cells]), per_cell[square.key()])]
                    n_queries = int(dict(square.params).get("n_queries", 5000))
                    block["black_box"].append(GM.summarise_square(norm, eps, names, recs, n_queries=n_queries))
                elif target == "downstream" and not any(GM.is_reference(c.impl, c.steps) for c in cells):
                    block["black_box"].append(GM.skipped_square(norm, eps, names))
                elif target == "downstream":
                    key = (f"gradient_masking|square|{norm}|{eps!r}|q{GM.SQUARE_QUERIES}|"
                           + ",".join(c.key() for c in cells))
                    recs = [self._cached(key, pos, lambda p=pos, b=i: self._square_check(
                        norm, eps, cells, p, [per_cell[c.key()][b] for c in cells]))
                        for i, pos in enumerate(batches) if int(pos[0]) < GM.SQUARE_SAMPLES]
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
    def _compute_order(self) -> list[Cell]:
        """Cells in the order they are computed: within an attack family, smaller budgets first; in a cascade suite,
        budget by budget (smaller first), each budget's cells in the suite's order."""
        index = {c.key(): i for i, c in enumerate(self.cells)}
        if self.suite.cascade:
            return sorted(self.cells, key=lambda c: (c.target, c.norm, float(c.eps), index[c.key()]))
        first: dict[str, int] = {}
        for i, c in enumerate(self.cells):
            first.setdefault(attack_family(c), i)
        return sorted(self.cells, key=lambda c: (first[attack_family(c)], float(c.eps)))

    def _record_key(self, cell: Cell) -> str:
        """The store's key of a cell's records: in a cascade they depend on the cells before it, so on the suite."""
        return f"cascade|{self.suite.name}|{cell.key()}" if self.suite.cascade else cell.key()

    def _broken_before(self, cell: Cell) -> list[str]:
        """Downstream cells whose broken samples this cell need not attack: the same attack at smaller budgets,
        and in a cascade every cell computed before it at this budget or at a smaller budget of its norm (an
        adversarial image of a smaller ball lies in the larger one too)."""
        if cell.target != "downstream" or not is_white_box(cell):
            return []
        if self.suite.cascade:
            order = [c for c in self._compute_order() if c.target == "downstream" and c.norm == cell.norm]
            return [c.key() for c in order[:order.index(cell)]]
        family = attack_family(cell)
        return [c.key() for c in self.cells
                if c.target == "downstream" and is_white_box(c) and attack_family(c) == family and c.eps < cell.eps]

    def _cell_records(self, cell: Cell, batches: list[torch.Tensor], clean: list[dict],
                      per_cell: dict[str, list[dict]], bar) -> list[dict[str, list]]:
        smaller = self._broken_before(cell)
        records = []
        for i, (pos, clean_rec) in enumerate(zip(batches, clean)):
            key = self._batch_key(pos)
            rec = self.store.get(self._record_key(cell), key)
            if rec is None:
                if cell.target == "reconstruction":
                    rec = self._attack_reconstruction(cell, pos)
                else:
                    rec = self._attack_downstream(cell, pos, clean_rec, [per_cell[k][i] for k in smaller])
                self.store.put(self._record_key(cell), key, rec)
            records.append(rec)
            bar.update(1)
        return records

    def _compute(self, batches: list[torch.Tensor], bar) -> tuple[list[dict], dict[str, list[dict]], dict]:
        self._bar = bar
        """Clean records, per-cell records and gradient-masking checks of these batches (from the store or computed)."""
        clean = []
        bar.set_description(f"{self.model_name} clean")
        for pos in batches:
            clean.append(self._clean(pos))
            bar.update(1)
        per_cell: dict[str, list[dict[str, list]]] = {}
        for cell in self._compute_order():
            bar.set_description(f"{self.model_name} {cell.target[:5]} {cell.attack} {cell.norm} {cell.eps:g}")
            per_cell[cell.key()] = self._cell_records(cell, batches, clean, per_cell, bar)
        bar.set_description(f"{self.model_name} gradient-masking checks")
        masking = self._gradient_masking(batches, per_cell) if self.checks else {}
        return clean, per_cell, masking

    def run(self) -> Optional[RunResult]:
        """The run's result (on rank 0 under torchrun; other ranks compute their share and return None)."""
        started = time.time()
        self.store.restart_clock()
        batches = self.batches()
        for role in sorted({r for c in self.cells for r in roles_needed(c)} | {
                "classifier" if t == "downstream" else "mim" for t in self.targets}):
            self.bundle.require(role)
        rank, world = D.rank(), D.world_size()
        mine = D.shard(batches, rank, world)
        bar = tqdm(total=len(mine) * (1 + len(self.cells)) + self._check_units(mine), desc=f"{self.model_name} clean",
                   unit="batch",
                   disable=not self.progress or rank != 0, dynamic_ncols=True)
        try:
            self._bar = bar
            self._prepare_universal()
            clean, per_cell, masking = self._compute(mine, bar)
            if world > 1:
                self.store.merge(D.gather_records(self.store.records()))
                if rank != 0:
                    return None
                clean, per_cell, masking = self._compute(batches, _NoBar())  # every record is there: reads only
        finally:
            bar.close()
        # a resumed run also counts the time earlier processes spent on the records it reuses (FileStore)
        result = self._aggregate(clean, per_cell, time.time() - started + self.store.reused_seconds)
        result.gradient_masking = masking
        self._add_universal(result)
        return result

    def _add_universal(self, result: RunResult) -> None:
        """The run's universal perturbations, by row label (one per loss and budget), and their crafting settings."""
        cells = [c for c in self.cells if c.impl == "universal"]
        for c in cells:
            result.universal[row_label(c.attack, c.norm, c.eps)] = self._universal_delta(c).cpu()
        if cells:
            p = dict(cells[0].params)
            result.universal_settings = {
                "split": "train", "images": min(int(p["images"]), len(self.train_data)) if self.train_data else
                int(p["images"]), "batch": int(p["batch"]), "steps": cells[0].steps, "step": "eps/10",
                "losses": sorted({str(dict(c.params)["loss"]) for c in cells}), "seed": self.seed,
                "random_start": cells[0].random_start}

    def _aggregate(self, clean: list[dict], per_cell: dict[str, list[dict]], seconds: float) -> RunResult:
        n = len(self.data)
        res = RunResult(self.model_name, self.suite.name, self.data.name, n, self.seed, seconds=seconds)
        base = {"model": self.model_name, "suite": self.suite.name}

        def merged(records: list[dict], key: str) -> list:
            return [v for r in records for v in r[key]]

        def optional(records: list[dict]) -> dict[str, Optional[float]]:
            return {m: _mean(merged(records, m)) for m in OPTIONAL_RECON_METRICS if all(m in r for r in records)}

        samples = {t: {} for t in self.targets}
        if "downstream" in self.targets:
            samples["downstream"]["clean"] = {"correct": merged(clean, "correct")}
            res.downstream.append({**base, "attack": "none", "norm": "none", "eps": 0.0, "n": n,
                                   "accuracy": _mean(merged(clean, "correct"))})
        if "reconstruction" in self.targets:
            samples["reconstruction"]["clean"] = {m: merged(clean, m) for m in RECON_METRICS}
            res.reconstruction.append({**base, "attack": "none", "norm": "none", "eps": 0.0, "n": n,
                                       **{m: _mean(merged(clean, m)) for m in RECON_METRICS}, **optional(clean)})
            if not self.lpips.available:
                res.unavailable["lpips"] = self.lpips.reason
        for cell in self.cells:
            recs = per_cell[cell.key()]
            row = {**base, "attack": cell.attack, "norm": cell.norm, "eps": float(cell.eps), "n": n}
            label = row_label(cell.attack, cell.norm, cell.eps)
            if cell.target == "downstream":
                samples["downstream"][label] = {"correct": merged(recs, "correct")}
                res.downstream.append({**row, "accuracy": _mean(merged(recs, "correct"))})
            else:
                samples["reconstruction"][label] = {m: merged(recs, m) for m in RECON_METRICS}
                res.reconstruction.append({**row, **{m: _mean(merged(recs, m)) for m in RECON_METRICS},
                                           **optional(recs)})
            res.cells.append(cell.to_dict())
        res.per_sample = samples
        return res
