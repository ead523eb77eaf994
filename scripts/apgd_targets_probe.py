"""Would the `standard` cascade with more APGD-T targets find what AutoAttack-standard finds and the board misses?

Diagnostic for docs/RANKING.md, not a board number. For the first n samples (n <= 100: one batch of the cascade)
of a model's committed `standard` entry at one Linf budget, re-runs the cascade's APGD-T stage exactly as the
suite runs it (same samples: the survivors of PGD-20 and APGD-CE; same batch seed) once per target count, and
reports the samples each count leaves standing. With the suite's own count it must reproduce the entry's bits
(checked: the probe is void otherwise). `--missed` takes the sample ids `benchmark.ranking_check --json` lists
as missed (robust on the board, broken by AutoAttack) and says which of them each target count breaks.

    python scripts/apgd_targets_probe.py --model mae_vit_t_fmnist_trades --eps 0.1 --targets 3,9 --missed 35,59,73
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.attacks.downstream.apgd import APGDT  # noqa: E402
from benchmark.leaderboard.entries import EntryError  # noqa: E402
from benchmark.ranking_check import standard_outcomes  # noqa: E402
from benchmark.suites import STANDARD_APGD_STEPS, STANDARD_APGD_TARGETS, row_label  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--n", type=int, default=100, help="first n sample ids, at most 100 (one cascade batch)")
    p.add_argument("--targets", default=f"{STANDARD_APGD_TARGETS},9")
    p.add_argument("--missed", default="", help="sample ids AutoAttack broke and the board did not")
    p.add_argument("--out", default="leaderboards")
    args = p.parse_args()
    if not 0 < args.n <= 100:
        print("error: --n must be in 1..100 (one batch of the cascade)", file=sys.stderr)
        return 2
    try:
        bundle, run, bits, data = standard_outcomes(args.model, Path(args.out), args.n)
    except (EntryError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    if row_label("apgd_t", "Linf", args.eps) not in bits:
        print(f"error: the '{run['suite']}' run of {args.model} has no Linf budget {args.eps:g}", file=sys.stderr)
        return 2
    before = bits[row_label("apgd_ce", "Linf", args.eps)][:args.n]
    after = bits[row_label("apgd_t", "Linf", args.eps)][:args.n]
    idx = np.flatnonzero(before)
    x, y = data.images[idx], data.labels[idx]
    ids = torch.as_tensor(np.asarray(data.sample_ids)[idx])
    missed = [int(i) for i in args.missed.split(",") if i]
    model = bundle.classifier.eval()
    print(f"{args.model}, Linf {args.eps:g}, first {args.n} ids: {len(idx)} survive PGD-20 and APGD-CE; "
          f"the entry's APGD-T ({STANDARD_APGD_TARGETS} targets) leaves {int(after.sum())}")
    for t in (int(v) for v in args.targets.split(",")):
        start = time.time()
        x_adv = APGDT(model, args.eps, n_targets=t, steps=STANDARD_APGD_STEPS,
                      seed=run["settings"]["seed"])(x, y, ids)
        with torch.no_grad():
            ok = (model(x_adv).float().argmax(1) == y).numpy()
        robust = np.zeros(args.n, dtype=bool)
        robust[idx] = ok
        note = ""
        if t == STANDARD_APGD_TARGETS:
            same = bool((robust == after).all())
            note = " (reproduces the entry)" if same else " (DOES NOT reproduce the entry: probe void)"
        found = [i for i in missed if i < args.n and not robust[i]]
        print(f"  {t} targets: {int(robust.sum())} robust{note}; breaks {len(found)} of the {len(missed)} missed "
              f"{found}; {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
