"""Entries, boards and pages from synthetic entries (no model runs): the schema is enforced on read and write,
partial runs stay out of the ranking, eps shows as k/255, resubmission policy, the submission checks, the
README's board is current, and the HTML page renders in headless Chromium with its tables and plots."""
from __future__ import annotations

import base64
import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import report
from benchmark.leaderboard import markdown
from benchmark.leaderboard import report as writer
from benchmark.leaderboard.boards import build_boards
from benchmark.leaderboard.entries import (
    DOWNSTREAM_COLUMNS,
    KEPT_COMPLETE,
    NEW_CHECKPOINT,
    RECON_COLUMNS,
    REPLACED,
    BoardConflict,
    EntryError,
    entry_path,
    missing_runs,
    read_entries,
    read_entry,
    validate_entry,
    write_entry,
)
from benchmark.leaderboard.examples import load_examples, save_examples
from benchmark.leaderboard.lock import BoardLockTimeout, board_lock
from benchmark.leaderboard.outcomes import build_outcomes, worst_case
from benchmark.leaderboard.submit import SubmissionError, check_board
from benchmark.runner.validation import ModelRejected, validate_model
from benchmark.suites import row_label

from . import browser
from .helpers import REPO, tiny_classifier, tiny_mae

EPS = (2 / 255, 4 / 255, 8 / 255)


def make_run(model: str, psnr: float, acc: float, n: int = 10000, complete: bool = True, flags=None,
             suite: str = "pgd", outcomes: bool = True, step: float = 0.2, eps: tuple = EPS) -> dict:
    """A run whose per-sample outcomes give its rows: the first round(a * n) samples robust at accuracy a, every
    sample at the row's PSNR. `outcomes=False`: a run of schema 1 (rows only)."""
    recon, down = [], []
    per_sample: dict = {"downstream": {}, "reconstruction": {}}
    for i, eps in enumerate((0.0,) + tuple(eps)):
        attack, norm = ("none", "none") if eps == 0 else ("pgd", "Linf")
        k = round(max(0.0, acc - step * i) * n)
        label = row_label(attack, norm, eps)
        per_sample["downstream"][label] = {"correct": [1.0] * k + [0.0] * (n - k)}
        per_sample["reconstruction"][label] = {"psnr": [psnr - 2 * i] * n, "ssim": [0.9 - 0.1 * i] * n,
                                               "mse": [0.01 * (i + 1)] * n}
        recon.append({"model": model, "suite": suite, "attack": attack, "norm": norm, "eps": eps, "n": n,
                      "mse": 0.01 * (i + 1), "psnr": psnr - 2 * i, "ssim": 0.9 - 0.1 * i, "lpips": None,
                      "psnr_input": None if eps == 0 else 40 - 5 * i, "token_agreement": None})
        down.append({"model": model, "suite": suite, "attack": attack, "norm": norm, "eps": eps, "n": n,
                     "accuracy": k / n})
    run = {"suite": suite, "settings": {"n": n, "eval_size": 10000, "seed": 0, "target": "both"}, "cells": [],
           "complete": complete, "partial_reason": None if complete else f"n={n} of the 10000 evaluation samples",
           "date": "2026-01-01T00:00:00+00:00", "seconds": 1.0, "versions": {"torch": "2.x"}, "unavailable": {},
           "reconstruction": recon, "downstream": down}
    if outcomes:
        run["outcomes"] = build_outcomes(per_sample, n)
        run["worst_case"] = worst_case(run)
    if flags:
        run["gradient_masking"] = flags
    return run


def make_base(seed: int) -> dict:
    sha = f"{seed:064x}"
    return {"card": {"name": f"m{seed}", "family": "mae", "arch": {"patch_size": 4}, "description": "synthetic",
                     "mim_sources": [], "paper": "", "defenses": []},
            "checkpoints": {"mim": {"file": "mim.safetensors", "sha256": sha}}}


def make_examples(k: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(k, 3, 32, 32, generator=g)
    delta = (torch.rand(k, 3, 32, 32, generator=g) * 2 - 1) * (8 / 255)
    pix = (torch.rand(k, 1, 8, 8, generator=g) < 0.75).float().repeat_interleave(4, 2).repeat_interleave(4, 3)
    return {"clean": clean, "delta": (clean + delta).clamp(0, 1) - clean, "recon_clean": clean.flip(3),
            "recon_attacked": torch.rand(k, 3, 32, 32, generator=g), "mask_pixels": pix,
            "sample_ids": torch.arange(k), "psnr_clean": torch.full((k,), 20.0), "psnr_attacked": torch.full((k,), 9.0),
            "meta": {"attack": "pgd", "norm": "Linf", "eps": 4 / 255, "cell": "synthetic", "seed": 0}}


@pytest.fixture(scope="module")
def synthetic_board(tmp_path_factory) -> Path:
    """Four models on cifar10 (eps k/255): two ranked with example grids, one flagged, one partial. Read-only."""
    out = tmp_path_factory.mktemp("synthetic") / "lb"
    models = [("strong", 30.0, 0.9, True, None), ("weak", 25.0, 0.8, True, None),
              ("masked", 28.0, 0.85, True, {"flags": ["reconstruction: 16/16 samples with an all-zero input gradient"],
                                             "suspected": True}),
              ("quick", 40.0, 0.99, False, None)]
    for seed, (name, psnr, acc, complete, flags) in enumerate(models, 1):
        run = make_run(name, psnr, acc, n=10000 if complete else 16, complete=complete, flags=flags)
        if name in ("strong", "weak"):
            save_examples(out / "cifar10" / "examples" / f"{name}.safetensors", make_examples())
            run["examples"] = {"file": f"examples/{name}.safetensors"}
        write_entry(out, "cifar10", name, make_base(seed), "pgd", run)
    writer.write_reports(out, "cifar10")
    return out


# -- schema ---------------------------------------------------------------------------------------------------

def _entry() -> dict:
    return {"schema_version": 2, "model": "m", "dataset": "cifar10", **make_base(1),
            "runs": {"pgd": make_run("m", 30, .9)}}


@pytest.mark.parametrize("edit,message", [
    (lambda e: e.pop("checkpoints"), "missing 'checkpoints'"),
    (lambda e: e["runs"]["pgd"]["reconstruction"].append(dict(e["runs"]["pgd"]["reconstruction"][1])), "duplicate row"),
    (lambda e: e["runs"]["pgd"]["downstream"][0].update(n=5), "sample count"),
    (lambda e: e["runs"]["pgd"]["downstream"][1].update(model="other"), "differ from the entry"),
    (lambda e: e["runs"]["pgd"]["downstream"][1].update(accuracy=1.5), "not a fraction"),
    (lambda e: e["runs"]["pgd"]["reconstruction"][1].update(psnr="high"), "psnr must be a number"),
    (lambda e: e["runs"]["pgd"]["reconstruction"][1].update(eps=0.0), "clean row"),
    (lambda e: e["runs"]["pgd"].update(complete="yes"), "'complete' must be true or false"),
    (lambda e: e["runs"]["pgd"].update(gradient_masking=["x"]), "'gradient_masking' must be an object"),
    (lambda e: e["checkpoints"]["mim"].update(sha256="abc"), "64-hex sha256"),
    (lambda e: e.update(schema_version=9), "schema_version 9"),
    (lambda e: e["runs"]["pgd"]["settings"].update(amp="fp8"), "amp must be"),
])
def test_the_schema_is_enforced(edit, message):
    entry = _entry()
    validate_entry(copy.deepcopy(entry))
    edit(entry)
    with pytest.raises(EntryError, match=message):
        validate_entry(entry)


def test_a_broken_entry_file_is_named_on_read(tmp_path):
    write_entry(tmp_path, "cifar10", "m", make_base(1), "pgd", make_run("m", 30, .9))
    path = entry_path(tmp_path, "cifar10", "m")
    data = json.loads(path.read_text())
    del data["runs"]["pgd"]["settings"]["n"]
    path.write_text(json.dumps(data))
    with pytest.raises(EntryError, match=r"m\.json.*settings"):
        read_entries(tmp_path, "cifar10")


def test_resubmission_policy(tmp_path):
    base = make_base(1)
    write_entry(tmp_path, "cifar10", "m", base, "pgd", make_run("m", 30, .9))
    _, status = write_entry(tmp_path, "cifar10", "m", base, "pgd", make_run("m", 31, .9))
    assert status == REPLACED and len(read_entries(tmp_path, "cifar10")[0]["runs"]["pgd"]["reconstruction"]) == 4
    partial = make_run("m", 99, .9, n=8, complete=False)
    before = entry_path(tmp_path, "cifar10", "m").read_bytes()
    assert write_entry(tmp_path, "cifar10", "m", base, "pgd", partial)[1] == KEPT_COMPLETE
    assert entry_path(tmp_path, "cifar10", "m").read_bytes() == before
    with pytest.raises(BoardConflict, match="another checkpoint.*--replace"):   # never without being asked
        write_entry(tmp_path, "cifar10", "m", make_base(2), "pgd", partial)
    assert entry_path(tmp_path, "cifar10", "m").read_bytes() == before
    assert write_entry(tmp_path, "cifar10", "m", make_base(2), "pgd", partial, replace=True)[1] == NEW_CHECKPOINT
    with pytest.raises(SubmissionError, match="already on the cifar10 board with another checkpoint"):
        check_board(tmp_path, "cifar10", "m", make_base(3)["checkpoints"], "pgd", True)
    with pytest.raises(SubmissionError, match="already on the cifar10 board as 'm'"):
        check_board(tmp_path, "cifar10", "other", make_base(2)["checkpoints"], "pgd", True)
    write_entry(tmp_path, "cifar10", "m", make_base(2), "pgd", make_run("m", 30, .9), replace=True)
    with pytest.raises(SubmissionError, match="partial run"):
        check_board(tmp_path, "cifar10", "m", make_base(2)["checkpoints"], "pgd", False)
    check_board(tmp_path, "cifar10", "m", make_base(2)["checkpoints"], "pgd", True)   # a resubmission is fine


def test_the_lock_serialises_writers(tmp_path):
    with board_lock(tmp_path):
        with pytest.raises(BoardLockTimeout, match="another run has been writing"):
            with board_lock(tmp_path, timeout=0.2):
                pass


# -- the submission checks on the model ------------------------------------------------------------------------

def _data(n: int = 4):
    from zoo.data import ImageDataset
    g = torch.Generator().manual_seed(0)
    return ImageDataset("fashion_mnist", "test", torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 10,
                        torch.arange(n), tuple("abcdefghij"), "synthetic")


def test_validate_model_accepts_a_sound_model_and_refuses_broken_ones():
    from zoo.bundle import ModelBundle
    good = ModelBundle(None, tiny_mae(), tiny_classifier())
    checked = validate_model(good, _data(), ["reconstruction", "downstream"])
    assert checked["finite_weights"] and checked["mim_min_input_grad_l1"] > 0
    flat = tiny_classifier()
    with torch.no_grad():
        flat.head.weight.zero_()      # logits no longer depend on the input: zero gradients
    with pytest.raises(ModelRejected, match="input gradients are zero for 4 of 4"):
        validate_model(ModelBundle(None, None, flat), _data(), ["downstream"])
    class Noisy(torch.nn.Module):      # a randomised defence: two passes disagree
        def __init__(self):
            super().__init__()
            self.inner = tiny_classifier()

        def forward(self, x):
            return self.inner(x + 0.05 * torch.randn_like(x))
    with pytest.raises(ModelRejected, match="two forward passes"):
        validate_model(ModelBundle(None, None, Noisy()), _data(), ["downstream"])
    nan = tiny_mae()
    with torch.no_grad():
        next(nan.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(ModelRejected, match="non-finite values"):
        validate_model(ModelBundle(None, nan, None), _data(), ["reconstruction"])


# -- the boards -------------------------------------------------------------------------------------------------

def test_boards_rank_complete_runs_and_list_partial_ones_apart(synthetic_board):
    folder = synthetic_board / "cifar10"
    rec, down = pd.read_csv(folder / "reconstruction.csv"), pd.read_csv(folder / "downstream.csv")
    assert list(rec.columns) == RECON_COLUMNS and list(down.columns) == DOWNSTREAM_COLUMNS
    assert len(rec) == len(down) == 16 and set(rec.model) == {"strong", "weak", "masked", "quick"}
    text = (folder / "reconstruction.md").read_text()
    assert "| Clean | Linf 2/255 | Linf 4/255 | Linf 8/255 (ranked) |" in text
    ranked, partial = text.split("Not ranked")
    assert ranked.index("`strong`") < ranked.index("`masked`") < ranked.index("`weak`")
    assert "| 1 | `strong` | 10000 | 30.00 (30.00–30.00) |" in ranked and "`quick`" not in ranked
    assert "`quick`" in partial and "n=16 of the 10000" in partial
    assert "`masked` ⚠" in ranked and "- `masked`: 16/16 samples with an all-zero input gradient" in text
    assert "⚠" not in (folder / "downstream.md").read_text()  # flagged for the reconstruction target only
    assert (folder / "plots" / "curves_pgd.png").is_file() and (folder / "plots" / "grid_strong.png").is_file()
    block = markdown.readme_block(synthetic_board)
    assert block.index("`strong`") < block.index("`weak`") and "`quick`" not in block and "1 not ranked" in block


def _decode_robust(run: dict, label: str) -> np.ndarray:
    """A bitset of the entry decoded as docs/ENTRIES.md says, independently of benchmark.leaderboard.outcomes."""
    n = run["outcomes"]["n"]
    raw = np.frombuffer(base64.b64decode(run["outcomes"]["downstream"][label]), np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def test_every_ranked_number_is_recomputed_from_the_entry_alone(synthetic_board):
    boards = {b.target: b for b in build_boards(read_entries(synthetic_board, "cifar10"), "cifar10")}
    down = boards["downstream"]
    assert down.reference == ("Linf", 8 / 255)
    for row in down.ranked:
        run = read_entry(entry_path(synthetic_board, "cifar10", row.model))["runs"]["pgd"]
        clean = _decode_robust(run, "clean")
        assert row.clean.value == pytest.approx(clean.mean())
        for (norm, eps), value in zip(down.budgets, row.values):
            attacks = [r["attack"] for r in run["downstream"] if r["norm"] == norm and r["eps"] == eps]
            worst = clean & np.logical_and.reduce([_decode_robust(run, f"{a}|{norm}|{eps!r}") for a in attacks])
            assert value.value == pytest.approx(worst.mean())
            k, n = int(worst.sum()), len(worst)
            z, p = 1.959964, k / n   # Wilson by hand
            centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            assert value.interval == pytest.approx((max(0, centre - half), min(1, centre + half)), abs=1e-5)
    recon = boards["reconstruction"]
    for row in recon.ranked:
        run = read_entry(entry_path(synthetic_board, "cifar10", row.model))["runs"]["pgd"]
        raw = np.frombuffer(base64.b64decode(run["outcomes"]["reconstruction"]["rows"]["pgd|Linf|" + repr(8 / 255)]),
                            "<u2")
        assert row.score.value == pytest.approx(raw.mean() / 100)


def test_models_whose_intervals_overlap_share_a_rank(tmp_path):
    out = tmp_path / "lb"
    for seed, (name, acc) in enumerate((("a", 0.700), ("b", 0.695), ("c", 0.690), ("d", 0.500)), 1):
        write_entry(out, "cifar10", name, make_base(seed), "pgd", make_run(name, 20.0, acc, n=1000, step=0.1))
    board = next(b for b in build_boards(read_entries(out, "cifar10"), "cifar10") if b.target == "downstream")
    assert [(r.model, r.rank_label) for r in board.ranked] == [("a", "1"), ("b", "=1"), ("c", "=1"), ("d", "4")]
    text = markdown.board_markdown("downstream", [board], {})
    assert "| =1 | `b` |" in text and "| 4 | `d` |" in text


def test_an_entry_whose_outcomes_disagree_with_its_rows_is_refused_naming_the_cell(tmp_path):
    write_entry(tmp_path, "cifar10", "m", make_base(1), "pgd", make_run("m", 30, .9))
    path = entry_path(tmp_path, "cifar10", "m")
    data = json.loads(path.read_text())
    row = next(r for r in data["runs"]["pgd"]["downstream"] if r["attack"] == "pgd" and r["eps"] == 4 / 255)
    row["accuracy"] += 0.01
    path.write_text(json.dumps(data))
    with pytest.raises(EntryError, match=r"m\.json.*cell 'pgd\|Linf\|0\.0156.*accuracy.*disagrees") as info:
        read_entries(tmp_path, "cifar10")
    assert "\n" not in str(info.value)
    data["runs"]["pgd"]["downstream"] = [r for r in data["runs"]["pgd"]["downstream"]]
    row["accuracy"] -= 0.01
    data["runs"]["pgd"]["worst_case"]["downstream"][2]["accuracy"] = 0.123
    path.write_text(json.dumps(data))
    with pytest.raises(EntryError, match="worst case at Linf eps 0.0156.*disagrees"):
        read_entries(tmp_path, "cifar10")


def test_runs_without_outcomes_are_listed_not_ranked(tmp_path):
    out = tmp_path / "lb"
    write_entry(out, "cifar10", "old", make_base(1), "pgd", make_run("old", 30, .9, outcomes=False))
    write_entry(out, "cifar10", "new", make_base(2), "pgd", make_run("new", 25, .8))
    board = next(b for b in build_boards(read_entries(out, "cifar10"), "cifar10") if b.target == "downstream")
    assert [r.model for r in board.ranked] == ["new"] and [r.model for r in board.partial] == ["old"]
    assert "schema 1" in board.partial[0].partial_reason
    assert board.partial[0].values[0].value == pytest.approx(0.7) and board.partial[0].values[0].interval is None


def test_readme_names_the_partial_runs_of_a_suite_with_nothing_ranked(tmp_path):
    out = tmp_path / "lb"
    write_entry(out, "cifar10", "quick", make_base(1), "pgd", make_run("quick", 40.0, 0.99, n=16, complete=False))
    block = markdown.readme_block(out)
    assert "suite `pgd`: no ranked run yet (`quick` (n=16))" in block and "| # |" not in block


def test_curve_legend_stays_inside_the_figure():
    """Long model names (and the partial marker) must not push legend entries off the PNG's edges."""
    from benchmark.leaderboard.plots import curves_figure
    names = [f"mae_vit_t_fmnist_{s}_advft" for s in ("adversarial", "denoising", "saliency_masking", "mimir")] + ["m"]
    entries = [{"model": m, "card": {"family": "mae"}, "runs": {"pgd": make_run(m, 15.0, 0.5, n=2000 if i == 2 else 10000,
                                                                                 complete=i != 2)}}
               for i, m in enumerate(names)]
    fig = curves_figure(build_boards(entries, "cifar10"), "pgd", "cifar10")
    fig.canvas.draw()
    box, legend = fig.bbox, fig.legends[0].get_window_extent()
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0, (box, legend)
    assert all(ax.get_window_extent().y0 > legend.y1 for ax in fig.axes if ax.get_visible())


def test_regenerating_gives_the_same_files(synthetic_board, tmp_path):
    board = shutil.copytree(synthetic_board, tmp_path / "lb")
    folder = board / "cifar10"
    names = ["reconstruction.csv", "downstream.csv", "reconstruction.md", "downstream.md", "index.html"]
    before = {n: (folder / n).read_bytes() for n in names}
    for n in names:
        (folder / n).unlink()
    (folder / "plots" / "grid_weak.png").unlink()
    (folder / "plots" / "grid_gone.png").write_bytes(b"stale")
    assert report.main(["--out", str(board)]) == 0
    assert {n: (folder / n).read_bytes() for n in names} == before
    assert (folder / "plots" / "grid_weak.png").is_file() and not (folder / "plots" / "grid_gone.png").exists()


def test_missing_runs_lists_what_a_complete_board_still_needs(tmp_path, capsys):
    """Only a complete run with per-sample outcomes counts: partial and schema-1 runs are still to do; the CLI
    lists the shipped models' missing (model, suite) lines and refuses an unknown suite with exit 2."""
    write_entry(tmp_path, "cifar10", "done", make_base(1), "pgd", make_run("done", 30, .9))
    write_entry(tmp_path, "cifar10", "done", make_base(1), "standard", make_run("done", 30, .9, suite="standard"))
    write_entry(tmp_path, "cifar10", "half", make_base(2), "pgd", make_run("half", 30, .9, complete=False))
    write_entry(tmp_path, "cifar10", "old", make_base(3), "pgd", make_run("old", 30, .9, outcomes=False))
    models = ["done", "half", "old", "absent"]
    assert missing_runs(tmp_path, "cifar10", models, ["pgd", "standard"]) == [
        ("half", "pgd"), ("half", "standard"), ("old", "pgd"), ("old", "standard"),
        ("absent", "pgd"), ("absent", "standard")]
    assert report.main(["--out", str(REPO / "leaderboards"), "--missing", "pgd"]) == 0
    lines = capsys.readouterr().out.split("\n")
    from zoo.registry import shipped_models
    assert all(line.split()[0] in shipped_models() and line.split()[1] == "pgd" for line in lines if line)
    assert report.main(["--out", str(REPO / "leaderboards"), "--missing", "nope"]) == 2
    assert "--missing nope: no such suite" in capsys.readouterr().err


def test_the_readme_shows_the_current_board():
    """The committed README's leaderboard block is what `python -m benchmark.report --readme` makes of the
    committed entries (regenerate it after adding entries)."""
    assert report.main(["--out", str(REPO / "leaderboards"), "--readme", str(REPO / "README.md"), "--check"]) == 0


def test_committed_entries_name_no_machine_path():
    """Every committed entry's card holds the portable trainer folder (`zoo.registry.portable_dir`), never the
    absolute path of the clone or worktree that ran it."""
    from zoo.registry import portable_dir
    paths = sorted((REPO / "leaderboards").glob("*/entries/*.json"))
    assert paths
    for path in paths:
        local_dir = read_entry(path)["card"].get("local_dir")
        assert local_dir is None or (local_dir == portable_dir(local_dir) and not Path(local_dir).is_absolute()), path


def test_html_renders_in_headless_chromium_with_tables_and_plots(synthetic_board, tmp_path):
    binary = browser.find_chromium()
    if binary is None:
        if browser.chromium_required():
            pytest.fail(browser.MISSING)
        pytest.skip(browser.MISSING)
    page = synthetic_board / "cifar10" / "index.html"
    dom = browser.dump_dom(binary, page)
    body = dom[dom.index("<body"):dom.index(">", dom.index("<body"))]
    loaded = int(body.split('data-images-loaded="')[1].split('"')[0])
    total = int(body.split('data-images-total="')[1].split('"')[0])
    assert total == 3 and loaded == total, body          # curves + two grids, all decoded
    assert int(body.split('data-tables="')[1].split('"')[0]) == 5   # 2 ranked + 2 partial + entries
    assert dom.count('<tr class="ranked">') == 6 and dom.count('<tr class="partial">') == 2
    index = browser.dump_dom(binary, synthetic_board / "index.html")
    assert 'data-images-loaded="1"' in index and "strong" in index
    png = browser.screenshot(binary, page, tmp_path / "cifar10.png")
    import matplotlib.image as mpimg
    img = mpimg.imread(str(png))
    assert img.shape[:2] == (1800, 1300) and img[..., :3].std() > 0.05    # not a blank page
    keep = __import__("os").environ.get("MIMBENCH_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)


def test_defense_effects_are_paired_differences_against_the_control(tmp_path):
    from benchmark.leaderboard.effects import defense_effects
    out = tmp_path / "lb"
    for seed, (name, acc, psnr) in enumerate((("mae_vit_t_fmnist_advft", 0.8, 20.0), ("variant", 0.9, 21.5)), 1):
        base = make_base(seed)
        base["card"]["defenses"] = ["mimir"] if name == "variant" else ["adversarial_finetune"]
        write_entry(out, "fashion_mnist", name, base, "standard", make_run(name, psnr, acc, n=1000, suite="standard",
                                                                           step=0.1))
    (effect,) = defense_effects(read_entries(out, "fashion_mnist"), "fashion_mnist")
    # clean: the variant gets the first 900 samples right, the control the first 800 (paired: 100 discordant)
    d, (lo, hi) = effect.clean
    se = math.sqrt(100 - 100 ** 2 / 1000) / 1000
    assert d == pytest.approx(0.1) and (lo, hi) == pytest.approx((0.1 - 1.959964 * se, 0.1 + 1.959964 * se))
    assert effect.psnr[0] == pytest.approx(1.5) and effect.defenses == ["mimir"]
    block = markdown.readme_block(out)
    assert "over the control `mae_vit_t_fmnist_advft`" in block and "| `variant` | mimir |" in block
    assert "+10.0 (+8.1 to +11.9) *" in block
    assert "same MIM weights" not in block


def test_a_variant_with_the_controls_mim_weights_says_so_instead_of_a_zero_psnr_effect(tmp_path):
    from benchmark.leaderboard.effects import defense_effects
    out = tmp_path / "lb"
    for name, acc in (("mae_vit_t_fmnist_advft", 0.8), ("fine_tuning_only", 0.7)):
        base = make_base(1)       # both entries: the same MIM checkpoint
        base["checkpoints"]["classifier"] = {"file": "classifier.safetensors", "sha256": f"{len(name):064x}"}
        write_entry(out, "fashion_mnist", name, base, "standard", make_run(name, 20.0, acc, n=1000, suite="standard",
                                                                           step=0.1))
    (effect,) = defense_effects(read_entries(out, "fashion_mnist"), "fashion_mnist")
    assert effect.same_mim and effect.psnr[0] == 0.0
    assert "| `fine_tuning_only` |" in markdown.readme_block(out) and "| same MIM weights |" in markdown.readme_block(out)


FMNIST_EPS = (0.05, 0.1, 0.2)


def test_the_readme_puts_the_best_variant_beside_the_published_anchors(tmp_path):
    out = tmp_path / "lb"
    # 'clean_first' has the higher clean accuracy, 'robust' the higher PGD-20 at Linf 0.1: the latter is the best
    for seed, (name, acc, step) in enumerate((("clean_first", 0.9, 0.3), ("robust", 0.85, 0.1)), 1):
        write_entry(out, "fashion_mnist", name, make_base(seed), "pgd",
                    make_run(name, 20.0, acc, step=step, eps=FMNIST_EPS))
    write_entry(out, "fashion_mnist", "robust", make_base(2), "standard",
                make_run("robust", 20.0, 0.85, n=1000, suite="standard", step=0.1, eps=FMNIST_EPS))
    block = markdown.readme_block(out)
    assert "| `robust` (best here) | 85.0 (84.3–85.7) | 65.0 (64.1–65.9) | +0.0 |" in block
    assert "| TRADES, wide CNN (Song et al., CCS 2019) | 90.9 | 72.4 | – |" in block
    assert "clean -5.9, PGD-20 -7.4 points" in block
    assert "to the target: clean -3.0 (not met), PGD-20 -5.0 (not met), ranked drop met." in block


def test_no_anchor_comparison_without_anchors_or_at_another_budget(synthetic_board, tmp_path):
    assert "best here" not in markdown.readme_block(synthetic_board)       # cifar10: no anchors recorded
    out = tmp_path / "lb"                                                 # fashion_mnist at budgets k/255: not 0.1
    write_entry(out, "fashion_mnist", "m", make_base(1), "pgd", make_run("m", 20.0, 0.9))
    assert "best here" not in markdown.readme_block(out)


def test_the_same_examples_are_written_as_the_same_bytes(tmp_path):
    """A re-run writes its examples again: same tensors and cell, same file, so git sees no change (safetensors
    alone orders the metadata at random)."""
    paths = [tmp_path / f"e{i}.safetensors" for i in range(4)]
    for path in paths:
        save_examples(path, make_examples())
    assert len({path.read_bytes() for path in paths}) == 1
    loaded = load_examples(paths[0])
    assert loaded["meta"]["cell"] == "synthetic" and loaded["clean"].shape == (3, 3, 32, 32)
