"""Threat models beyond white-box (issue 15): transfer from the pretrained model, universal perturbations, common
corruptions. Cells and keys, the runner's records, the boards built from them, and the command line end to end."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

import benchmark.suites as S
import zoo
from benchmark import metrics as M
from benchmark.attacks import attack_registry
from benchmark.attacks.reconstruction import UniversalPerturbation
from benchmark.corruptions import CORRUPTIONS, SEVERITIES
from benchmark.corruptions.apply import corrupt_batch
from benchmark.runner import MemoryStore, Runner
from benchmark.runner.run import universal_key
from benchmark.suites import LINF_EPS, TRANSFER_ATTACKS, get_suite, row_label

from .helpers import REPO

EPS = LINF_EPS["fashion_mnist"]
OLD_SUITES = ("fgsm", "bim", "pgd", "pgd_l2", "threat", "cw", "autoattack", "adaptive", "full", "standard")


@pytest.fixture(scope="module")
def baseline():
    return zoo.load_model("mae_vit_t_fmnist")


@pytest.fixture(scope="module")
def fmnist_train():
    from zoo.data import load_dataset
    return load_dataset("fashion_mnist", "train")


@pytest.fixture
def small_universal(monkeypatch):
    """A universal perturbation crafted in seconds: 6 steps over batches of 16 of the first 96 training images."""
    monkeypatch.setattr(S, "UNIVERSAL_STEPS", 6)
    monkeypatch.setattr(S, "UNIVERSAL_BATCH", 16)
    monkeypatch.setattr(S, "UNIVERSAL_TRAIN_IMAGES", 96)


def _bits(result, label: str) -> np.ndarray:
    return np.asarray(result.per_sample["downstream"][label]["correct"], dtype=bool)


def _psnr(result, label: str) -> float:
    return float(np.mean(result.per_sample["reconstruction"][label]["psnr"]))


# -- cells -----------------------------------------------------------------------------------------------------

def test_white_box_cells_keep_their_keys():
    """The resumable store is keyed by Cell.key(): a cell that exists before issue 15 keeps its key exactly."""
    cell = get_suite("pgd").cells("fashion_mnist", "reconstruction")[1]
    assert cell.key() == "reconstruction|pgd|pgd|Linf|0.1|20|0.0125|True|aware|all|1"   # docs/ENTRIES.md's example
    for name in OLD_SUITES:
        for c in get_suite(name).cells("cifar10"):
            assert c.source == "self" and "source=" not in c.key() and c.crafted_by == c.target, (name, c.attack)
    transfer = get_suite("transfer").cells("fashion_mnist")
    pgd = {c.key() for c in get_suite("pgd").cells("fashion_mnist")}
    assert {c.key() for c in transfer if c.attack == "pgd"} == pgd   # the white-box rows share the pgd suite's records
    assert all(c.key().endswith(f"source={c.source}") for c in transfer if c.attack != "pgd")


def test_the_new_suites_matrices():
    transfer = get_suite("transfer").cells("cifar10")
    for eps in LINF_EPS["cifar10"]:
        assert {c.attack for c in transfer if c.eps == eps and c.target == "downstream"} == {"pgd", *TRANSFER_ATTACKS}
        assert {c.attack for c in transfer if c.eps == eps and c.target == "reconstruction"} == {
            "pgd", "transfer_from_classifier"}
    for c in transfer:
        assert c.impl in attack_registry(c.crafted_by), c.attack
        assert c.crafted_by == {"self": c.target, "mim": "reconstruction", "classifier": "downstream"}[c.source]
        assert (c.steps, c.alpha / c.eps, c.random_start) == (20, 2.5 / 20, True)   # PGD-20, as the white-box row
    universal = get_suite("universal").cells("fashion_mnist")
    assert len(universal) == 2 * 2 * len(EPS) and all(c.impl in attack_registry("reconstruction") for c in universal)
    # one perturbation per (loss, budget), shared by both targets
    assert len({universal_key(c) for c in universal}) == 2 * len(EPS)
    corruptions = get_suite("corruptions").cells("imagenet")
    assert len(corruptions) == 2 * len(CORRUPTIONS) * len(SEVERITIES)
    assert {(c.attack, c.norm, c.eps) for c in corruptions if c.target == "downstream"} == {
        (n, "severity", float(s)) for n in CORRUPTIONS for s in SEVERITIES}
    assert all(c.crafted_by is None for c in corruptions)


# -- transfer --------------------------------------------------------------------------------------------------

class _NoGradients(torch.nn.Module):
    """A classifier that fails when anything asks it for gradients: a transfer attacker must not."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        assert not torch.is_grad_enabled(), "the transfer attacker used the classifier's gradients"
        return self.model(x)


def test_transfer_lies_between_white_box_and_clean(baseline, fmnist_test, one_thread):
    """On the baseline (32 samples): per budget, white-box PGD-20 <= every transfer attack <= clean, for the
    classifier's accuracy and for the reconstruction's masked PSNR; the transfer attacks do damage; and the attacker
    crafting on the pretrained model never takes a gradient of the classifier."""
    data = fmnist_test.subset(32)
    suite = get_suite("transfer")
    cells = suite.cells("fashion_mnist")
    result = Runner(baseline, data, suite, cells, model_name="baseline", batch_size=32, progress=False,
                    checks=False).run()
    clean = _bits(result, "clean")
    for eps in EPS:
        white = _bits(result, row_label("pgd", "Linf", eps))
        for attack in TRANSFER_ATTACKS:
            moved = _bits(result, row_label(attack, "Linf", eps))
            assert not (moved & ~clean).any(), "robust under transfer but wrong on clean input"
            assert white.sum() <= moved.sum() <= clean.sum(), (attack, eps, white.sum(), moved.sum(), clean.sum())
        psnr_white = _psnr(result, row_label("pgd", "Linf", eps))
        psnr_moved = _psnr(result, row_label("transfer_from_classifier", "Linf", eps))
        assert psnr_white <= psnr_moved <= _psnr(result, "clean"), (eps, psnr_white, psnr_moved)
    worst = clean.copy()
    for attack in TRANSFER_ATTACKS:
        worst &= _bits(result, row_label(attack, "Linf", EPS[-1]))
    assert worst.sum() < clean.sum() - 4, "transfer from the pretrained model should break some samples at 0.2"
    # the classifier only ever evaluates: a classifier that refuses gradients gives the same transfer records
    guarded = replace(baseline, classifier=_NoGradients(baseline.classifier))
    only = [c for c in cells if c.source == "mim" and c.eps == EPS[-1]]
    again = Runner(guarded, data, suite, only, model_name="baseline", batch_size=32, progress=False,
                   checks=False).run()
    for c in only:
        label = row_label(c.attack, c.norm, c.eps)
        assert np.array_equal(_bits(again, label), _bits(result, label))


# -- universal -------------------------------------------------------------------------------------------------

def test_universal_perturbation_in_its_ball_on_every_image_and_crafted_once(baseline, fmnist_test, fmnist_train,
                                                                            small_universal, monkeypatch,
                                                                            one_thread):
    data = fmnist_test.subset(24)
    suite = get_suite("universal")
    cells = suite.cells("fashion_mnist")
    crafted = []
    original = UniversalPerturbation.craft

    def spy(self, images, sample_ids):
        assert images is fmnist_train.images, "crafted on something else than the training split"
        crafted.append((self.loss, self.eps))
        return original(self, images, sample_ids)
    monkeypatch.setattr(UniversalPerturbation, "craft", spy)
    store = MemoryStore()
    result = Runner(baseline, data, suite, cells, model_name="baseline", batch_size=12, progress=False,
                    store=store, train_data=fmnist_train).run()
    assert sorted(crafted) == sorted((loss, eps) for loss in S.UNIVERSAL_LOSSES for eps in EPS)   # once each
    assert set(result.universal) == {row_label(f"universal_{loss}", "Linf", eps)
                                     for loss in S.UNIVERSAL_LOSSES for eps in EPS}
    x = data.images
    with torch.no_grad():
        predictions = {}
        for label, delta in result.universal.items():
            eps = float(label.split("|")[2])
            assert delta.shape == x.shape[1:] and float(delta.abs().max()) <= eps + 1e-6
            x_adv = (x + delta).clamp(0, 1)
            per_image = (x_adv - x).flatten(1).abs().amax(1)
            assert bool((per_image <= eps + 1e-6).all()) and 0 <= float(x_adv.min()) <= float(x_adv.max()) <= 1
            predictions[label] = baseline.classifier(x_adv).argmax(1) == data.labels
    clean = _bits(result, "clean")
    for label, correct in predictions.items():   # the records are the perturbation's, applied unchanged
        assert np.array_equal(_bits(result, label), clean & correct.numpy()), label
    assert result.universal_settings["split"] == "train" and result.universal_settings["images"] == 96
    # a resumed run reads the perturbations from the store: nothing is crafted again, the numbers are the same
    crafted.clear()
    again = Runner(baseline, data, suite, cells, model_name="baseline", batch_size=12, progress=False,
                   store=store, train_data=fmnist_train).run()
    assert crafted == [] and again.per_sample == result.per_sample
    with pytest.raises(ValueError, match="training split"):
        Runner(baseline, data, suite, cells, model_name="baseline", batch_size=12, progress=False).run()


# -- corruptions -----------------------------------------------------------------------------------------------

def test_corruption_records_are_the_corrupted_images_own(baseline, fmnist_test, one_thread):
    """Accuracy on the corrupted image (whatever the clean prediction, as RobustBench counts it) and the masked
    PSNR of its reconstruction against the clean image, recomputed here from `corrupt_batch`."""
    data = fmnist_test.subset(16)
    suite = get_suite("corruptions")
    cells = [c for c in suite.cells("fashion_mnist") if c.attack in ("fog", "gaussian_noise") and c.eps in (1, 5)]
    result = Runner(baseline, data, suite, cells, model_name="baseline", batch_size=8, progress=False).run()
    x, ids = data.images, data.sample_ids
    mim = baseline.mim
    mask = mim.make_mask(ids, seed=0)
    for c in cells:
        xc = corrupt_batch(x, c.attack, int(c.eps), ids, seed=0)
        label = row_label(c.attack, c.norm, c.eps)
        with torch.no_grad():
            if c.target == "downstream":
                expect = (baseline.classifier(xc).argmax(1) == data.labels).numpy()
                assert np.array_equal(_bits(result, label), expect), label
            else:
                recon = mim.forward_mim(xc, mask).reconstruction.clamp(0, 1)
                expect = M.masked_psnr(recon, x, mask, mim.patch_size).numpy()
                got = np.asarray(result.per_sample["reconstruction"][label]["psnr"])
                assert np.allclose(got, expect, atol=1e-4), label
    assert _psnr(result, row_label("fog", "severity", 5.0)) < _psnr(result, row_label("fog", "severity", 1.0))


# -- the command line and the boards, end to end ------------------------------------------------------------

def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_bench.py"), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def _main(argv: list[str]) -> int:
    from benchmark.cli import main
    return main(argv)


def test_an_unknown_corruption_is_one_line_and_exit_code_2(tmp_path):
    proc = run_bench("--suite", "corruptions", "--corruptions", "fog,fogg", "--out", str(tmp_path / "lb"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --corruptions: unknown corruption 'fogg'"), proc.stderr
    assert not (tmp_path / "lb").exists()


@pytest.mark.parametrize("args, message", [
    (["--suite", "corruptions", "--severities", "0,6"], "--severities: severity '0' is outside 1-5"),
    (["--suite", "corruptions", "--severities", "high"], "--severities: severity 'high'"),
    (["--suite", "corruptions", "--corruptions", "fog,"], "--corruptions: 'fog,': expected"),
    (["--suite", "pgd", "--corruptions", "fog"], "select cells of the corruptions suite"),
])
def test_bad_corruption_arguments_are_one_line_exit_2(args, message, tmp_path, capsys):
    assert _main([*args, "--out", str(tmp_path / "lb")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "lb").exists()


def test_a_model_without_a_classifier_runs_the_reconstruction_side_and_says_so(tmp_path, small_universal, capsys,
                                                                               one_thread):
    folder = tmp_path / "mim_only"
    folder.mkdir()
    for name in ("card.json", "mim.safetensors"):
        shutil.copy(REPO / "zoo" / "weights" / "mae_vit_t_fmnist" / name, folder / name)
    out = tmp_path / "lb"
    for suite, extra in (("transfer", []), ("universal", []),
                         ("corruptions", ["--corruptions", "fog,contrast", "--severities", "2"])):
        rc = _main(["--model", str(folder), "--suite", suite, "--n-examples", "8", "--batch-size", "8",
                    "--out", str(out), "--no-progress", *extra])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert "no classifier" in err and f"suite '{suite}' runs its reconstruction side only" in err
        run = json.loads((out / "fashion_mnist" / "entries" / "mim_only.json").read_text())["runs"][suite]
        assert run["settings"]["target"] == "reconstruction" and run["downstream"] == []
        assert {r["attack"] for r in run["reconstruction"]} - {"none"} == {
            "transfer": {"pgd"}, "universal": {"universal_feature", "universal_mim"},
            "corruptions": {"fog", "contrast"}}[suite]
    corr = json.loads((out / "fashion_mnist" / "entries" / "mim_only.json").read_text())["runs"]["corruptions"]
    assert not corr["complete"] and "2 of the 15 corruptions" in corr["partial_reason"]


def _cheap_universal(mp: pytest.MonkeyPatch) -> None:
    """The universal suite with a cheaper crafting (the suite's 100 steps over 2000 images take ~3 minutes here)."""
    mp.setattr(S, "UNIVERSAL_STEPS", 20)
    mp.setattr(S, "UNIVERSAL_TRAIN_IMAGES", 500)


@pytest.fixture(scope="module")
def board_64(tmp_path_factory):
    """The three suites on the embedded default with --n-examples 64 --batch-size 32, one board, with timings."""
    out = tmp_path_factory.mktemp("threat_board")
    timings = {}
    with pytest.MonkeyPatch.context() as mp:
        _cheap_universal(mp)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for suite in ("transfer", "universal", "corruptions"):
                started = time.time()
                rc = _main(["--suite", suite, "--n-examples", "64", "--batch-size", "32", "--out", str(out),
                            "--no-progress"])
                timings[suite] = time.time() - started
                assert rc == 0, suite
        finally:
            torch.set_num_threads(threads)
    print("\nseconds per suite at n=64:", {k: round(v, 1) for k, v in timings.items()})
    return out, timings


@pytest.mark.slow
def test_three_suites_end_to_end_at_64(board_64):
    out, _ = board_64
    folder = out / "fashion_mnist"
    entry = json.loads((folder / "entries" / "mae_vit_t_fmnist.json").read_text())
    assert set(entry["runs"]) == {"transfer", "universal", "corruptions"}
    for suite, run in entry["runs"].items():
        assert run["settings"]["n"] == 64 and run["settings"]["target"] == "both" and not run["complete"]
        assert run["downstream"] and run["reconstruction"], suite
    corr = entry["runs"]["corruptions"]
    assert len(corr["downstream"]) == len(corr["reconstruction"]) == 1 + len(CORRUPTIONS) * len(SEVERITIES)
    universal = entry["runs"]["universal"]["universal"]
    from benchmark.leaderboard.universal import load_universal
    deltas, meta = load_universal(folder / universal["file"])
    assert meta["split"] == "train" and set(deltas) == set(universal["perturbations"])
    for label, delta in deltas.items():
        assert float(delta.abs().max()) <= float(label.split("|")[2]) + 1e-6
    grid = entry["runs"]["universal"]["examples"]
    assert grid["file"].endswith(".universal.safetensors") and grid["attack"] == "universal_mim"
    for name in ("transfer_transfer.png", "corruptions_mae_vit_t_fmnist.png", "universal_mae_vit_t_fmnist.png",
                 "grid_mae_vit_t_fmnist.universal.png", "curves_corruptions.png"):
        assert (folder / "plots" / name).is_file(), name
    page = (folder / "index.html").read_text()
    assert 'id="corruptions"' in page and 'id="universal"' in page and 'class="sortable transfer"' in page


@pytest.mark.slow
def test_boards_rank_each_threat_model_by_its_own_rule(board_64):
    """The transfer board's columns are the worst case over the transfer rows only (the white-box row would make it a
    white-box board); the corruption board's are means over the corruptions. Recomputed here from the entry's
    per-sample outcomes with numpy alone."""
    import base64

    from benchmark.leaderboard.boards import build_boards
    from benchmark.leaderboard.entries import read_entries
    out, _ = board_64
    entries = read_entries(out, "fashion_mnist")
    boards = {(b.suite, b.target): b for b in build_boards(entries, "fashion_mnist")}
    run = entries[0]["runs"]["transfer"]
    n = run["outcomes"]["n"]

    def bits(r, label):
        raw = np.frombuffer(base64.b64decode(r["outcomes"]["downstream"][label]), np.uint8)
        return np.unpackbits(raw, bitorder="little")[:n].astype(bool)
    board = boards[("transfer", "downstream")]
    assert board.ranked_attacks == list(TRANSFER_ATTACKS) and board.reference_attack == "pgd"
    row = board.partial[0]
    for j, (norm, eps) in enumerate(board.budgets):
        worst = bits(run, "clean")
        for a in TRANSFER_ATTACKS:
            worst &= bits(run, row_label(a, norm, eps))
        assert row.values[j].value == pytest.approx(worst.mean())
        white = bits(run, row_label("pgd", norm, eps)).mean()
        assert row.details["pgd"][j].value == pytest.approx(white) and white <= row.values[j].value
    corr = entries[0]["runs"]["corruptions"]
    board = boards[("corruptions", "downstream")]
    row = board.partial[0]
    per_severity = [np.mean([bits(corr, row_label(c, "severity", float(s))) for c in CORRUPTIONS], axis=0)
                    for s in SEVERITIES]
    for j in range(len(SEVERITIES)):
        assert row.values[j].value == pytest.approx(per_severity[j].mean())
    assert row.score.value == pytest.approx(np.mean(per_severity))
    text = (out / "fashion_mnist" / "downstream.md").read_text()
    assert "Ranked by the mean over 15 corruptions and 5 severities" in text
    assert "share of the white-box damage" in text and "| Mean (ranked) |" in text


@pytest.mark.slow
def test_regenerating_the_threat_boards_gives_the_same_files(board_64, tmp_path):
    from benchmark.leaderboard import regenerate
    out, _ = board_64
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.MonkeyPatch.context() as mp:   # the suite definition the runs were made with (else their rows get †)
        _cheap_universal(mp)
        regenerate(copy)
    for path in sorted((out / "fashion_mnist").rglob("*")):
        if path.is_file() and path.suffix in (".md", ".csv", ".html", ".png", ".json", ".safetensors"):
            assert path.read_bytes() == (copy / path.relative_to(out)).read_bytes(), path.name
