"""`python run_bench.py` / `mimbench`: run a suite on a model and update the leaderboards.

Exit codes: 0 done; 2 bad arguments or missing inputs (one line, nothing written); 1 a failure inside.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

DEFAULT_MODEL = "mae_vit_t_fmnist"
DEFAULT_N_EXAMPLES = 1000


class UsageError(Exception):
    """A mistake of the user's: reported in one line with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py",
        description="mimbench: adversarial robustness of masked image models (reconstruction and downstream).",
        epilog="Examples:\n  python run_bench.py                       # embedded default, pgd suite\n"
               "  python run_bench.py --model mae_vit_b --suite pgd --data-dir /data/imagenet/val\n"
               "  python run_bench.py --suite transfer      # perturbations from the pretrained model alone\n"
               "  python run_bench.py --suite universal     # one perturbation per budget, crafted on train images\n"
               "  python run_bench.py --suite corruptions --corruptions fog,snow --severities 1,5\n"
               "  python run_bench.py --model runs/my_mae --name my_mae --submit   # validate, full set, publish\n"
               "  python run_bench.py --list-models\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registry name, a folder written by the trainer, a transformers folder, or a Hugging Face "
                        f"Hub model hf-hub:ORG/NAME[@REVISION] (default {DEFAULT_MODEL})")
    p.add_argument("--suite", default=None, help="attack suite (default pgd; see --list-suites)")
    p.add_argument("--dataset", default=None, help="evaluation dataset (default: the model card's dataset)")
    p.add_argument("--data-dir", default=None, help="where the dataset lives (when not in its default place)")
    p.add_argument("--checkpoint", default=None, help="MIM checkpoint file to use instead of the card's")
    p.add_argument("--classifier-checkpoint", default=None, help="classifier checkpoint file to use")
    p.add_argument("--classifier", default=None,
                   help="a transformers classifier (BeitForImageClassification, ViTForImageClassification) to pair "
                        "with the model: hf-hub:ORG/NAME[@REVISION] or a folder")
    p.add_argument("--n-examples", type=int, default=None,
                   help=f"evaluate the first N samples of the evaluation set (default {DEFAULT_N_EXAMPLES}; with "
                        f"--submit the whole set, and fewer marks the entry partial)")
    p.add_argument("--batch-size", type=int, default=100, help="samples per batch (default 100)")
    p.add_argument("--target", choices=("both", "reconstruction", "downstream"), default="both")
    p.add_argument("--corruptions", default=None, metavar="NAMES",
                   help="with --suite corruptions: the corruptions to run, comma-separated (default all 15: "
                        "gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur, "
                        "snow, frost, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression); a "
                        "subset makes the entry partial")
    p.add_argument("--severities", default=None, metavar="LEVELS",
                   help="with --suite corruptions: the severities to run, comma-separated from 1-5 (default all)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of masks and random starts (default 0)")
    p.add_argument("--out", default="leaderboards", help="leaderboard folder (default leaderboards/)")
    p.add_argument("--name", default=None, help="label of the model in the tables (default: its name)")
    p.add_argument("--submit", action="store_true",
                   help="validate the model, run the dataset's standard suite on the whole evaluation set and "
                        "publish the entry (needs --name)")
    p.add_argument("--replace", action="store_true",
                   help="let this run replace the board's entry of its label when that entry holds another "
                        "checkpoint (without it such a run is refused before it starts)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--fresh", action="store_true",
                   help="recompute everything instead of resuming from the records of an earlier identical run")
    p.add_argument("--no-early-stop", action="store_true",
                   help="attack every sample for every step (torchattacks' numbers exactly; slower, never stronger)")
    p.add_argument("--amp", choices=("none", "bf16"), default="none",
                   help="bf16 autocast of the models (for GPUs; changes the numbers slightly, see docs/PERFORMANCE.md)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format on CUDA")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice, one per core; beside another busy job use "
                        "the free cores only, e.g. 1: more threads than free cores stall each other)")
    p.add_argument("--list-models", action="store_true", help="list the model zoo and whether files are present")
    p.add_argument("--list-suites", action="store_true", help="print every suite's attack matrix")
    return p


def _list_models() -> str:
    from zoo.checkpoints import checkpoint_cache
    from zoo.hub import describe_hub_sources, hub_cache_dir
    from zoo.registry import get_card, list_models
    width = max(len(n) for n in list_models())
    lines = [f"{'name':<{width}} {'family':<7} {'dataset':<14} files"]
    for name in list_models():
        card = get_card(name)
        parts = []
        for role, sources in (("mim", card.mim_sources), ("classifier", card.classifier_sources)):
            sources = [s for s in sources if s.hub is None]
            if not sources:
                continue
            if card.local_dir:
                present = (Path(card.local_dir) / sources[0].filename).is_file()
                where = f"zoo/weights/{Path(card.local_dir).name}/{sources[0].filename}"
            else:
                found = [s for s in sources if (checkpoint_cache() / s.filename).is_file()]
                present = bool(found)
                src = (found or sources)[0]
                where = (str(checkpoint_cache() / src.filename) if present else
                         f"{src.filename} from {src.url}" if src.url else f"{src.filename}, by hand from {src.page}")
            parts.append(f"{role}: {'present' if present else 'missing'} ({where})")
        parts.append(describe_hub_sources(card))
        lines.append(f"{name:<{width}} {card.family:<7} {card.dataset:<14} " + "; ".join(p for p in parts if p))
    lines.append(f"\ncache: {checkpoint_cache()} (set MIMBENCH_HOME to move it); Hugging Face cache: {hub_cache_dir()}")
    return "\n".join(lines)


def _list_suites() -> str:
    from .suites import LINF_EPS, describe, get_suite, list_suites
    blocks = []
    for name in list_suites():
        suite = get_suite(name)
        text = describe(suite, "fashion_mnist")
        for ds in sorted(LINF_EPS):
            if ds != "fashion_mnist":
                text += "\n" + "\n".join(describe(suite, ds).splitlines()[1:])
        blocks.append(text)
    return "\n\n".join(blocks)


def _device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"--device {name}: expected auto, cpu or cuda[:i]")
    return torch.device(name)


def _model_label(args, bundle) -> str:
    if args.name is not None:
        return args.name
    if Path(args.model).is_dir():
        from zoo.registry import MODELS
        shipped = MODELS.get(bundle.card.name) if bundle.card.name in MODELS else None
        if shipped is None or Path(shipped.local_dir or "").resolve() != Path(args.model).resolve():
            return Path(args.model).resolve().name
    return bundle.card.name


# The clean top-1 of a published classifier is checked against its paper only on ImageNet with enough samples.
TOP1_CHECK_MIN_N = 500


def expected_top1_warning(card, dataset: str, n: int, accuracy: Optional[float]) -> Optional[str]:
    """One line when the measured clean top-1 is far from the paper's (wrong preprocessing or wrong file)."""
    expected = getattr(card, "expected_top1", None)
    if expected is None or accuracy is None or dataset != "imagenet" or card.dataset != "imagenet" \
            or n < TOP1_CHECK_MIN_N:
        return None
    tolerance = max(0.05, 3 * math.sqrt(expected * (1 - expected) / n))  # at least 5 points, or 3 binomial sigmas
    if abs(accuracy - expected) <= tolerance:
        return None
    return (f"warning: clean top-1 {accuracy:.3f} on {n} imagenet images is far from the {expected:.3f} reported for "
            f"{card.name}: check the preprocessing and the checkpoint file")


def _input_shape(model) -> Optional[tuple[int, int, int]]:
    """C x H x W a model takes (from its timm patch embedding), None when it does not say."""
    from timm.layers import PatchEmbed
    embed = next((m for m in model.modules() if isinstance(m, PatchEmbed)), None) if model is not None else None
    if embed is None or embed.img_size is None:
        return None
    return (embed.proj.in_channels, *embed.img_size)


def _versions() -> dict[str, str]:
    import piq
    import timm
    import torch
    import torchattacks

    import zoo

    from .attacks.downstream import autoattack_backend
    versions = {"mimbench": zoo.__version__, "torch": torch.__version__, "timm": timm.__version__,
                "torchattacks": torchattacks.__version__, "piq": piq.__version__, "python": platform.python_version()}
    try:
        _, package = autoattack_backend()
        versions[package] = getattr(sys.modules[package], "__version__", "unknown")
    except ImportError:
        pass
    return versions


def code_fingerprint() -> str:
    """A hash of the zoo's and the benchmark's source: stored records of other code are not reused."""
    import hashlib

    import zoo
    digest = hashlib.sha256()
    for package in (Path(zoo.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _result_store(args, checkpoints: dict, dataset_name: str, data_source: str, device, rank: int):
    """The resumable store of this exact run: keyed by everything that determines its numbers."""
    from zoo.data import cache_dir

    from .runner.store import FileStore, store_key
    parts = {"checkpoints": {k: v["sha256"] for k, v in checkpoints.items()}, "dataset": dataset_name,
             "data_source": data_source, "seed": args.seed, "batch_size": args.batch_size,
             "early_stop": not args.no_early_stop, "amp": args.amp, "channels_last": args.channels_last,
             "device": device.type, "code": code_fingerprint()}
    key = store_key(parts)
    folder = cache_dir() / "runs"
    if args.fresh and rank == 0:
        for path in folder.glob(f"{key}.rank*.jsonl"):
            path.unlink()
    from .runner import distributed as D
    D.barrier()
    return FileStore(folder, key, rank=rank)


@dataclass
class Plan:
    """What the arguments ask for, checked before anything is loaded."""

    suite: Any                   # benchmark.suites.Suite
    device: Any                  # torch.device
    out: Path
    rank: int
    corruptions: Optional[tuple[str, ...]] = None    # --corruptions, parsed
    severities: Optional[tuple[int, ...]] = None     # --severities, parsed


@dataclass
class Inputs:
    """What a run works on, loaded and checked before the first attack."""

    bundle: Any                  # zoo.ModelBundle
    data: Any                    # zoo.data.ImageDataset, the first n samples
    dataset: str
    cells: list
    label: str
    checkpoints: dict[str, dict[str, str]]
    full_size: int
    eval_size: int               # what a complete run of the suite evaluates (the whole set, or its fixed subset)
    validation: Optional[dict[str, Any]] = None
    target: str = "both"         # what the run evaluates (a model without a classifier: 'reconstruction')
    train_data: Any = None       # the training split, for the universal suite's crafting
    matrix_note: Optional[str] = None   # why the suite's matrix is not run whole (--corruptions / --severities)

    @property
    def complete(self) -> bool:
        return len(self.data) == self.eval_size and self.matrix_note is None

    @property
    def partial_reason(self) -> Optional[str]:
        reasons = ([] if len(self.data) == self.eval_size else [f"n={len(self.data)} of the {self.eval_size} "
                                                                 f"evaluation samples"])
        return "; ".join(reasons + ([self.matrix_note] if self.matrix_note else [])) or None


def check_writable_folder(path: Path, what: str) -> None:
    """UsageError unless `path` is a folder this process can write to, or can be created as one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: a file is in the way (it must be a folder)")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what} {path}: {probe} is a file, so the folder cannot be made")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: {probe} is not writable")


def check_arguments(args: argparse.Namespace) -> Plan:
    """Every check that needs only the arguments (UsageError): numbers, names, the suite, the device, `--out`."""
    from .leaderboard.entries import is_board_name
    from .suites import DEFAULT_SUITE, get_suite

    if args.submit and args.name is None:
        raise UsageError("--submit needs --name LABEL (the model's name on the board)")
    if args.name is not None and not is_board_name(args.name):
        raise UsageError(f"--name '{args.name}': a board label is 1-80 letters, digits and . _ + - (starting "
                         f"with a letter or digit)")
    if args.n_examples is not None and args.n_examples < 1:
        raise UsageError(f"--n-examples must be a positive number, got {args.n_examples}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be positive, got {args.threads}")
    try:
        suite = get_suite(args.suite or DEFAULT_SUITE)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    corruptions, severities = _corruption_selection(args, suite)
    device = _device(args.device)
    from zoo.data import cache_dir
    check_writable_folder(Path(args.out), "--out")
    check_writable_folder(cache_dir(), "the cache (MIMBENCH_HOME)")
    from .runner import distributed as D
    D.init_from_env(device)
    if D.is_distributed() and device.type == "cuda":
        import torch
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return Plan(suite=suite, device=device, out=Path(args.out), rank=D.rank(), corruptions=corruptions,
                severities=severities)


def _corruption_selection(args: argparse.Namespace, suite) -> tuple[Optional[tuple[str, ...]],
                                                                    Optional[tuple[int, ...]]]:
    """--corruptions and --severities, parsed and checked (UsageError: one line, exit code 2)."""
    from .corruptions import CorruptionError, parse_corruptions, parse_severities
    if args.corruptions is None and args.severities is None:
        return None, None
    if suite.aggregate != "mean":
        raise UsageError(f"--corruptions and --severities select cells of the corruptions suite, not of suite "
                         f"'{suite.name}' (add --suite corruptions)")
    parsed = []
    for option, text, parse in (("--corruptions", args.corruptions, parse_corruptions),
                                ("--severities", args.severities, parse_severities)):
        try:
            parsed.append(parse(text) if text is not None else None)
        except CorruptionError as exc:
            raise UsageError(f"{option}: {exc}") from None
    return parsed[0], parsed[1]


def _select_corruptions(cells: list, plan: Plan) -> tuple[list, Optional[str]]:
    """The corruption cells --corruptions / --severities keep, and what the run leaves out (None: nothing)."""
    from .corruptions import CORRUPTIONS, SEVERITIES
    names, levels = plan.corruptions or CORRUPTIONS, plan.severities or SEVERITIES
    kept = [c for c in cells if not c.is_corruption or (c.attack in names and int(c.eps) in levels)]
    if len(kept) == len(cells):
        return cells, None
    return kept, (f"{len(names)} of the {len(CORRUPTIONS)} corruptions at severities "
                  f"{', '.join(map(str, levels))} of 1-5")


def _fallback_to_reconstruction(args: argparse.Namespace, plan: Plan, bundle, cells: list) -> tuple[list, str]:
    """A model without a classifier runs the reconstruction side of a suite that allows it, and says so."""
    from .runner.run import roles_needed
    if not (plan.suite.reconstruction_fallback and args.target in ("both", "reconstruction")
            and bundle.classifier is None and bundle.mim is not None):
        return cells, args.target
    kept = [c for c in cells if "classifier" not in roles_needed(c)]
    if len(kept) == len(cells):
        return cells, args.target
    why = bundle.missing.get("classifier", f"{bundle.card.name} has no classifier")
    if plan.rank == 0:
        print(f"note: no classifier ({why}): suite '{plan.suite.name}' runs its reconstruction side only "
              f"({len(kept)} of its {len(cells)} cells)", file=sys.stderr)
    return kept, "reconstruction"


def load_inputs(args: argparse.Namespace, plan: Plan) -> Inputs:
    """The model, the data, the cells and the label, each checked (UsageError), and the board checks of the label."""
    from zoo import CheckpointError, load_model
    from zoo.data import DatasetError, load_dataset

    from .leaderboard.entries import EntryError, is_board_name, read_entries
    from .leaderboard.submit import SubmissionError, check_board, check_label
    from .runner.validation import ModelRejected, validate_model
    from .suites import get_suite, standard_suite

    try:
        bundle = load_model(args.model, checkpoint=args.checkpoint, classifier_checkpoint=args.classifier_checkpoint,
                            classifier=args.classifier)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    dataset = args.dataset or bundle.card.dataset
    if args.submit and args.suite is None:
        plan.suite = get_suite(standard_suite(dataset))
    from .runner.run import roles_needed
    try:
        cells = plan.suite.cells(dataset, args.target)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    cells, matrix_note = _select_corruptions(cells, plan)
    cells, run_target = _fallback_to_reconstruction(args, plan, bundle, cells)
    for role, target in (("mim", "reconstruction"), ("classifier", "downstream")):
        if run_target in ("both", target) and getattr(bundle, role) is None:
            hint = f" (or run with --target {'downstream' if role == 'mim' else 'reconstruction'})"
            raise UsageError(bundle.missing.get(role, f"no {role} model") + hint)
    roles = sorted({r for c in cells for r in roles_needed(c)})
    for role in roles:   # a transfer cell also needs the model that crafts its perturbation
        if getattr(bundle, role) is None:
            raise UsageError(f"suite '{plan.suite.name}' crafts perturbations on the {role} model: "
                             + bundle.missing.get(role, f"no {role} model"))
    try:
        data = load_dataset(dataset, "test", data_dir=args.data_dir, preprocessing=bundle.card.preprocessing)
        train_data = (load_dataset(dataset, "train", data_dir=args.data_dir, preprocessing=bundle.card.preprocessing)
                      if any(c.impl == "universal" for c in cells) else None)
    except DatasetError as exc:
        raise UsageError(str(exc) + (" (the universal suite crafts its perturbations on the training split)"
                                     if any(c.impl == "universal" for c in cells) else "")) from None
    for role in roles:
        shape = _input_shape(getattr(bundle, role))
        if shape is not None and tuple(data.images.shape[1:]) != shape:
            raise UsageError(f"{bundle.card.name} takes {' x '.join(map(str, shape))} images, {dataset} has "
                             f"{' x '.join(map(str, data.images.shape[1:]))} (its card's dataset is "
                             f"{bundle.card.dataset})")
    full_size = len(data)
    eval_size = plan.suite.eval_size(full_size)
    n = args.n_examples if args.n_examples is not None else (eval_size if args.submit
                                                             else min(DEFAULT_N_EXAMPLES, eval_size))
    if n > full_size:
        raise UsageError(f"--n-examples {n}: {dataset} has only {full_size} evaluation samples")
    if n > eval_size:
        raise UsageError(f"--n-examples {n}: suite '{plan.suite.name}' evaluates the first {eval_size} sample ids")
    label = _model_label(args, bundle)
    if not is_board_name(label):
        raise UsageError(f"the model label '{label}': a board label is 1-80 letters, digits and . _ + - (starting "
                         f"with a letter or digit); choose one with --name")
    from zoo.checkpoints import check_finite
    for role in roles:
        try:
            check_finite(getattr(bundle, role), source=f"{role} weights of {bundle.card.name}")
        except CheckpointError as exc:
            raise UsageError(f"submission refused: {exc}" if args.submit else str(exc)) from None
    try:
        read_entries(plan.out, dataset)   # a board that cannot be read would fail only after the run
    except EntryError as exc:
        raise UsageError(f"the board {plan.out}: {exc}") from None
    checkpoints = {k: {"file": Path(v["path"]).name, "sha256": v["sha256"]} for k, v in bundle.files.items()}
    inputs = Inputs(bundle, data.subset(n), dataset, cells, label, checkpoints, full_size, eval_size,
                    target=run_target, train_data=train_data, matrix_note=matrix_note)
    try:
        check_label(plan.out, dataset, label, checkpoints, replace=args.replace)
        if args.submit:
            check_board(plan.out, dataset, label, checkpoints, plan.suite.name, inputs.complete, replace=args.replace)
    except (SubmissionError, EntryError) as exc:
        raise UsageError(f"submission refused: {exc}" if args.submit else str(exc)) from None
    if args.submit:
        try:
            inputs.validation = validate_model(bundle, inputs.data, sorted({c.target for c in cells}), seed=args.seed,
                                               device="cpu")
        except ModelRejected as exc:
            raise UsageError(f"submission refused: {exc}") from None
    return inputs


def run_suite(args: argparse.Namespace, plan: Plan, inputs: Inputs):
    """Run the suite's cells on the inputs (resuming from the store); None on ranks other than 0 under torchrun."""
    import torch

    from . import metrics
    from .runner import Runner

    bundle, device = inputs.bundle, plan.device
    bundle.to(device)
    if args.channels_last and device.type == "cuda":
        for model in (bundle.mim, bundle.classifier):
            if model is not None:
                model.to(memory_format=torch.channels_last)
    lpips = metrics.load_lpips(device) if inputs.target != "downstream" else None
    store = _result_store(args, inputs.checkpoints, inputs.dataset, inputs.data.source, device, plan.rank)
    if len(store) and plan.rank == 0:
        print(f"resuming: {len(store)} finished (cell, batch) records in {store.folder} (--fresh recomputes)",
              file=sys.stderr)
    runner = Runner(bundle, inputs.data, plan.suite, inputs.cells, model_name=inputs.label,
                    batch_size=args.batch_size, seed=args.seed, device=device, lpips=lpips, store=store,
                    progress=not args.no_progress, early_stop=not args.no_early_stop, train_data=inputs.train_data)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else contextlib.nullcontext()
    with amp:
        return runner.run()


def _run_record(args: argparse.Namespace, plan: Plan, inputs: Inputs, result) -> dict[str, Any]:
    """The run as its entry stores it (docs/ENTRIES.md)."""
    from .leaderboard.outcomes import add_exact_worst, build_outcomes, worst_case
    settings = {"n": result.n, "eval_size": inputs.eval_size, "seed": args.seed, "batch_size": args.batch_size,
                "target": inputs.target, "device": str(plan.device), "dataset": inputs.dataset,
                "data_source": inputs.data.source, "amp": args.amp, "early_stop": not args.no_early_stop}
    record: dict[str, Any] = {
        "suite": plan.suite.name, "settings": settings, "cells": result.cells, "complete": inputs.complete,
        "partial_reason": inputs.partial_reason,
        "submitted": bool(args.submit),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(result.seconds, 1),
        "versions": _versions(), "unavailable": result.unavailable, "gradient_masking": result.gradient_masking,
        "reconstruction": result.reconstruction, "downstream": result.downstream,
    }
    if inputs.eval_size < inputs.full_size:
        record["subset"] = f"the first {inputs.eval_size} sample ids of the {inputs.full_size}"
    if inputs.validation is not None:
        record["validation"] = inputs.validation
    record["outcomes"] = build_outcomes(result.per_sample, result.n)
    record["worst_case"] = worst_case(record)
    add_exact_worst(record["worst_case"], result.per_sample, result.reconstruction)
    return record


def publish_run(args: argparse.Namespace, plan: Plan, inputs: Inputs, result) -> int:
    """Print the run's summary and write its entry, examples and the regenerated reports to the board."""
    from .leaderboard.entries import KEPT_COMPLETE, NEW_CHECKPOINT, REPLACED
    from .leaderboard.lock import BoardLockTimeout
    from .leaderboard.markdown import run_summary
    from .leaderboard.submit import SubmissionError, publish
    from .runner.examples import capture_examples, pick_cell, universal_example

    bundle, label = inputs.bundle, inputs.label
    examples = None
    example_cell = pick_cell(inputs.cells) if bundle.mim is not None else None
    universal = ({"perturbations": result.universal, "settings": result.universal_settings}
                 if result.universal else None)
    perturb = None
    if universal is not None and bundle.mim is not None:   # the grid shows the universal perturbation at work
        example_cell, perturb = universal_example(inputs.cells, result.universal)
    if example_cell is not None:
        try:
            examples = capture_examples(bundle.mim, inputs.data, example_cell, seed=args.seed, device=plan.device,
                                        perturb=perturb)
        except Exception as exc:  # pictures are a courtesy: never lose a finished run over them
            print(f"warning: no reconstruction examples ({type(exc).__name__}: {exc})", file=sys.stderr)
    record = _run_record(args, plan, inputs, result)
    base = {"card": bundle.card.entry_dict(), "checkpoints": inputs.checkpoints}
    print(run_summary(result.reconstruction, result.downstream))
    clean_top1 = next((r["accuracy"] for r in result.downstream if r["attack"] == "none"), None)
    warning = expected_top1_warning(bundle.card, inputs.dataset, result.n, clean_top1)
    if warning:
        print(warning, file=sys.stderr)
    for k, v in result.unavailable.items():
        print(f"note: {k} unavailable: {v}")
    for flag in result.gradient_masking.get("flags", []):
        print(f"warning: possible gradient masking: {flag}")
    try:
        entry, status, paths = publish(plan.out, inputs.dataset, label, base, plan.suite.name, record, examples,
                                       submit=args.submit, replace=args.replace, universal=universal)
    except (SubmissionError, BoardLockTimeout) as exc:
        raise UsageError(f"submission refused: {exc}" if args.submit else str(exc)) from None
    if status == KEPT_COMPLETE:
        print(f"\nnot written: {entry} already holds a complete '{plan.suite.name}' run of this checkpoint, which "
              f"this partial run (n={result.n}) does not replace; use --out DIR to keep it elsewhere")
        return 0
    if status == NEW_CHECKPOINT:
        print(f"note: '{label}' had another checkpoint; its entry was replaced (--replace)")
    what = "replaced the rows of" if status == REPLACED else "added"
    print(f"\n{what} '{label}' ({'complete' if inputs.complete else 'partial, not ranked'}): {entry}")
    print("regenerated " + ", ".join(str(p) for p in paths.values()))
    return 0


def run(args: argparse.Namespace) -> int:
    """A benchmark run: check the arguments, load and check the inputs, run the suite, publish the entry."""
    plan = check_arguments(args)
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    inputs = load_inputs(args, plan)
    result = run_suite(args, plan, inputs)
    if result is None:  # another rank than 0 under torchrun: rank 0 writes
        return 0
    return publish_run(args, plan, inputs, result)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_models:
            print(_list_models())
            return 0
        if args.list_suites:
            print(_list_suites())
            return 0
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return 0
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
