"""`python -m benchmark.perf`: what the benchmark's speed-ups buy on this machine, for the embedded default
(or any `--model` of the Fashion-MNIST zoo, e.g. a defended variant, on which fewer samples break early).

Three measurements, printed as a table and optionally saved as JSON (`--json`):
1. attack step cost: one PGD step of the downstream engine (early stopping off, so every sample is stepped)
   over one forward+backward pass of the classifier on the same batch; goal <= 1.10;
2. the `pgd` suite through the runner against the loop a user would write with torchattacks: every eps from
   scratch, clean passes repeated per cell, no early stopping; goal >= 3x faster, attacks at least as strong
   (robust accuracy <= the naive loop's at every eps; reconstruction numbers identical, same attack);
3. scaling: wall time and peak resident memory of the runner at n, 2n and 4n samples (each in a fresh
   process, so the peak is that run's); goal: time linear in n, memory flat.
Timings are the minimum of `--repeats` runs (the least disturbed by other load on the machine).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

DEFAULT_MODEL = "mae_vit_t_fmnist"


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _setup(n: int, model: str = DEFAULT_MODEL):
    from zoo import load_model
    from zoo.data import load_dataset
    bundle = load_model(model)
    data = load_dataset(bundle.card.dataset, "test").subset(n)
    return bundle, data


def step_cost(model: str = DEFAULT_MODEL, batch: int = 100, steps: int = 20, repeats: int = 3) -> dict[str, float]:
    """Seconds per PGD step (engine, torchattacks) and per forward+backward pass, on one batch."""
    import torchattacks

    from .attacks.downstream import iterative_attack
    bundle, data = _setup(batch, model)
    clf = bundle.classifier.eval()
    x, y = data.images, data.labels
    eps = 0.1

    def fwd_bwd() -> None:
        for _ in range(steps):
            v = x.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(clf(v), y), v)

    def engine() -> None:
        iterative_attack(clf, x, y, eps=eps, alpha=2.5 * eps / steps, steps=steps, early_stop=False,
                         sample_ids=data.sample_ids)

    def library() -> None:
        torchattacks.PGD(clf, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)(x, y)

    t_ref = _best_of(fwd_bwd, repeats) / steps
    t_engine = _best_of(engine, repeats) / steps
    t_lib = _best_of(library, repeats) / steps
    return {"batch": batch, "fwd_bwd_s": t_ref, "engine_step_s": t_engine, "torchattacks_step_s": t_lib,
            "engine_over_fwd_bwd": t_engine / t_ref, "torchattacks_over_fwd_bwd": t_lib / t_ref}


def _runner(bundle, data, checks: bool, target: str = "both", early_stop: bool = True):
    from .runner import Runner
    from .suites import get_suite
    suite = get_suite("pgd")
    return Runner(bundle, data, suite, suite.cells(data.name, target), model_name=bundle.card.name, batch_size=100,
                  progress=False, checks=checks, early_stop=early_stop)


def naive_suite(bundle, data, target: str) -> dict[float, float]:
    """One target of the pgd suite as a user would loop it with torchattacks: per eps from scratch, clean passes
    repeated, no early stopping. Robust accuracy (downstream) or mean masked PSNR (reconstruction) per eps."""
    import torchattacks

    from . import metrics as M
    from .attacks import build_attack
    from .suites import get_suite
    clf, mim = bundle.classifier.eval(), bundle.mim.eval()
    out: dict[float, float] = {}
    for cell in get_suite("pgd").cells(data.name, target):
        total = 0.0
        for start in range(0, len(data), 100):
            x, y = data.images[start:start + 100], data.labels[start:start + 100]
            ids = data.sample_ids[start:start + 100]
            if cell.target == "downstream":
                with torch.no_grad():
                    clean_ok = clf(x).argmax(1) == y  # the clean accuracy, recomputed for every eps
                adv = torchattacks.PGD(clf, eps=cell.eps, alpha=cell.alpha, steps=cell.steps, random_start=True)(x, y)
                with torch.no_grad():
                    total += float(((clf(adv).argmax(1) == y) & clean_ok).sum())
            else:
                mask = mim.make_mask(ids, seed=0)
                with torch.no_grad():
                    mim.forward_mim(x, mask)  # the clean reconstruction, recomputed for every eps
                adv = build_attack(mim, cell, seed=0)(x, mask, ids)
                with torch.no_grad():
                    recon = mim.forward_mim(adv, mask).reconstruction.float().clamp(0, 1)
                    total += float(M.masked_psnr(recon, x, mask, mim.patch_size).sum())
        out[float(cell.eps)] = total / len(data)
    return out


def paired_strength(bundle, data, runner) -> dict[float, dict[str, int]]:
    """Per eps of the pgd suite, paired per sample: how many clean-correct samples the full-length PGD-20
    (torchattacks' arithmetic, every sample stepped to the end, the same per-sample random starts) breaks, and
    how many of those the runner's early-stopping attack left standing (`missed`: 0 for an attack never weaker)."""
    from .attacks.downstream import iterative_attack
    clf = bundle.classifier.eval()
    records = runner.store.records()
    out: dict[float, dict[str, int]] = {}
    for cell in [c for c in runner.cells if c.target == "downstream"]:
        broken_full = missed = 0
        for pos in runner.batches():
            key = runner._batch_key(pos)
            clean, ours = records[("clean", key)], records[(cell.key(), key)]
            ok = torch.tensor(clean["correct"], dtype=torch.bool)
            x, y, ids = data.images[pos][ok], data.labels[pos][ok], data.sample_ids[pos][ok]
            if not len(x):
                continue
            _, broken = iterative_attack(clf, x, y, eps=cell.eps, alpha=cell.alpha, steps=cell.steps, norm=cell.norm,
                                         sample_ids=ids, seed=runner.seed, early_stop=False)
            standing = torch.tensor(ours["correct"], dtype=torch.bool)[ok]
            broken_full += int(broken.sum())
            missed += int((broken & standing).sum())
        out[float(cell.eps)] = {"broken_by_full_run": broken_full, "missed_by_runner": missed}
    return out


def suite_speed(n: int, repeats: int, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Wall time of the pgd suite per target: the runner (attacks alone, then with its gradient-masking checks)
    against the naive loop, and whether the runner's attacks are at least as strong."""
    bundle, data = _setup(n, model)
    res: dict[str, Any] = {"n": n}
    metric = {"downstream": "accuracy", "reconstruction": "psnr"}
    for target in ("downstream", "reconstruction"):
        kept: dict[str, Any] = {}

        def ours(t: str = target) -> None:
            kept["runner"] = _runner(bundle, data, checks=False, target=t)
            kept["ours"] = kept["runner"].run()

        def naive(t: str = target) -> None:
            kept["naive"] = naive_suite(bundle, data, t)

        t_ours, t_naive = _best_of(ours, repeats), _best_of(naive, repeats)
        rows = getattr(kept["ours"], target)
        values = {float(r["eps"]): r[metric[target]] for r in rows if r["attack"] != "none"}
        res[target] = {"runner_s": t_ours, "naive_s": t_naive, "speedup": t_naive / t_ours,
                       "runner": values, "naive": kept["naive"]}
        if target == "downstream":
            res[target]["paired"] = paired_strength(bundle, data, kept["runner"])
    down = res["downstream"]
    # Robust accuracy differs by the random starts alone (per sample id here, torch's stream there): a
    # difference within 2 binomial standard errors is noise, not a weaker attack.
    down["standard_error"] = {e: math.sqrt(max(p * (1 - p), 1 / n) * 2 / n) for e, p in down["naive"].items()}
    down["at_least_as_strong"] = all(down["runner"][e] <= down["naive"][e] + 2 * down["standard_error"][e]
                                     for e in down["runner"])
    down["never_weaker_paired"] = all(v["missed_by_runner"] == 0 for v in down["paired"].values())
    res["reconstruction"]["identical"] = all(abs(res["reconstruction"]["runner"][e] - res["reconstruction"]["naive"][e])
                                             < 1e-4 for e in res["reconstruction"]["runner"])
    res["runner_s"] = down["runner_s"] + res["reconstruction"]["runner_s"]
    res["naive_s"] = down["naive_s"] + res["reconstruction"]["naive_s"]
    res["speedup"] = res["naive_s"] / res["runner_s"]

    def with_checks() -> None:
        _runner(bundle, data, checks=True).run()

    res["runner_with_checks_s"] = _best_of(with_checks, 1)
    return res


def _scaling_worker(n: int, model: str) -> dict[str, float]:
    bundle, data = _setup(n, model)
    start = time.perf_counter()
    _runner(bundle, data, checks=True).run()
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "seconds": seconds, "peak_rss_mib": peak_kib / 1024}


def scaling(n: int, threads: int, model: str = DEFAULT_MODEL) -> list[dict[str, float]]:
    """Runner wall time and peak memory at n, 2n, 4n, each in its own process."""
    rows = []
    for k in (1, 2, 4):
        proc = subprocess.run([sys.executable, "-m", "benchmark.perf", "--_scaling-worker", str(k * n), "--model", model,
                               "--threads", str(threads)], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = rows[0]
    for r in rows:
        r["time_per_sample_vs_n"] = (r["seconds"] / r["n"]) / (base["seconds"] / base["n"])
        r["memory_vs_n"] = r["peak_rss_mib"] / base["peak_rss_mib"]
    return rows


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def _report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads); "
             f"model {res['model']}", ""]
    if "step_cost" in res:
        s = res["step_cost"]
        lines.append(f"1. attack step / forward+backward (batch {s['batch']}): engine {s['engine_over_fwd_bwd']:.3f} "
                     f"(goal <= 1.10), torchattacks.PGD {s['torchattacks_over_fwd_bwd']:.3f}; "
                     f"fwd+bwd {1000 * s['fwd_bwd_s']:.1f} ms")
    if "suite" in res:
        q = res["suite"]
        d, r = q["downstream"], q["reconstruction"]
        lines += [f"2. pgd suite, n={q['n']}: runner {q['runner_s']:.1f} s, naive torchattacks loop {q['naive_s']:.1f} "
                  f"s -> {q['speedup']:.2f}x (goal >= 3x); the runner with its gradient-masking checks (Square, "
                  f"zero-gradient, randomness, noise) {q['runner_with_checks_s']:.1f} s",
                  f"   downstream: {d['runner_s']:.1f} s vs {d['naive_s']:.1f} s -> {d['speedup']:.2f}x; at least as "
                  f"strong (within 2 s.e.): {d['at_least_as_strong']}; paired with the full-length PGD-20 on the "
                  f"same starts, no sample it breaks is left standing: {d['never_weaker_paired']}",
                  f"   reconstruction: {r['runner_s']:.1f} s vs {r['naive_s']:.1f} s -> {r['speedup']:.2f}x (same "
                  f"attack; identical PSNR: {r['identical']})"]
        for eps in sorted(d["runner"]):
            lines.append(f"   eps {eps:g}: robust accuracy runner {d['runner'][eps]:.3f} vs naive {d['naive'][eps]:.3f} "
                         f"(s.e. {d['standard_error'][eps]:.3f}); masked PSNR runner {r['runner'][eps]:.3f} vs naive "
                         f"{r['naive'][eps]:.3f}")
    if "scaling" in res:
        lines.append("3. scaling (runner, pgd suite with checks):")
        for row in res["scaling"]:
            lines.append(f"   n={row['n']:>5}: {row['seconds']:7.1f} s, time/sample x{row['time_per_sample_vs_n']:.2f}, "
                         f"peak RSS {row['peak_rss_mib']:.0f} MiB (x{row['memory_vs_n']:.2f})")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="samples for the suite comparison (default 500)")
    p.add_argument("--scaling-n", type=int, default=200, help="n of the scaling runs n, 2n, 4n (default 200)")
    p.add_argument("--repeats", type=int, default=2, help="timing repeats, the fastest kept (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"a Fashion-MNIST zoo model (default {DEFAULT_MODEL})")
    p.add_argument("--parts", default="step,suite,scaling",
                   help="which measurements, comma-separated (default step,suite,scaling)")
    p.add_argument("--_scaling-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._scaling_worker is not None:
        print(json.dumps(_scaling_worker(args._scaling_worker, args.model)))
        return 0
    if min(args.n, args.scaling_n, args.repeats) < 1:
        print("error: --n, --scaling-n and --repeats must be positive", file=sys.stderr)
        return 2
    parts = set(args.parts.split(","))
    if not parts or parts - {"step", "suite", "scaling"}:
        print(f"error: --parts takes step, suite and scaling, got '{args.parts}'", file=sys.stderr)
        return 2
    res: dict[str, Any] = {"machine": machine(), "model": args.model}
    if "step" in parts:
        res["step_cost"] = step_cost(args.model, repeats=max(args.repeats, 3))
    if "suite" in parts:
        res["suite"] = suite_speed(args.n, args.repeats, args.model)
    if "scaling" in parts:
        res["scaling"] = scaling(args.scaling_n, torch.get_num_threads(), args.model)
    res["machine"]["load_average_after"] = machine()["load_average"]
    print(_report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
