"""The trainer: a recipe runs for a few steps and yields a folder that loads and benchmarks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import zoo

from .helpers import REPO


def test_recipe_two_steps_gives_a_loadable_model(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--recipe", "mae_vit_t_fmnist", "--max-steps", "2",
                           "--out", str(out), "--no-eval"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["complete"] is False and card["training"]["stages"]["pretrain"]["steps"] == 2
    bundle = zoo.load_model(out)
    assert bundle.mim is not None and bundle.classifier is not None
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert bundle.classifier(x).shape == (2, 10)
        assert bundle.mim.forward_mim(x, bundle.mim.make_mask([0, 1])).reconstruction.shape == x.shape
    assert (out / "log_pretrain.csv").read_text().startswith("epoch,step,lr,loss")


def test_list_recipes_json():
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--list-recipes", "--json"], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert {"name": "mae_vit_t_fmnist", "defenses": []} in rows


@pytest.mark.parametrize("amp", ["cuda", "bf16"])
def test_a_resumed_stage_ends_exactly_where_the_uninterrupted_one_ends(tmp_path, amp):
    """A stage stopped after its first epoch checkpoint (as a kill would leave it) and resumed gives the weights
    of the uninterrupted stage: batches, masks and random starts are functions of (seed, step); in fp32 on the CPU
    (amp "cuda", the recipes' default) and under CPU bf16 autocast alike."""
    from timm.optim import param_groups_weight_decay

    from zoo.train.loop import train_stage
    from zoo.train.objectives import MIMPretrainObjective
    from zoo.train.recipes import StageConfig

    from .helpers import dataset_of, tiny_mae

    g = torch.Generator().manual_seed(0)
    data = dataset_of(torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    cfg = StageConfig(epochs=2, batch_size=16, lr=1e-3, warmup_epochs=0.5,
                      defenses={"adversarial": {"eps": 0.1, "steps": 1}}, amp=amp)

    def run(out, **kwargs):
        model = tiny_mae().train()
        objective = MIMPretrainObjective(model, cfg, seed=0)
        res = train_stage("pretrain", objective, param_groups_weight_decay(model, 0.05), cfg, data, objective, out,
                          0, torch.device("cpu"), **kwargs)
        return res, model.state_dict()

    res_full, full = run(tmp_path / "a")
    res_cut, cut = run(tmp_path / "b", max_steps=4)  # 4 steps = one epoch: its checkpoint is written
    with open(tmp_path / "b" / "log_pretrain.csv", "a") as f:  # a step logged after the checkpoint, then killed
        f.write("1.5,6,0.001,999.0,0.0\n")
    res_resumed, resumed = run(tmp_path / "b", resume=True)
    assert (res_full.steps, res_cut.steps, res_resumed.steps) == (8, 4, 8) and not res_cut.complete
    assert any(not torch.equal(full[k], cut[k]) for k in full)
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    log = (tmp_path / "b" / "log_pretrain.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,lr,loss") and log[-1].split(",")[1] == "8"
    full_log = (tmp_path / "a" / "log_pretrain.csv").read_text().splitlines()
    steps = [ln.split(",")[1] for ln in log[1:]]
    assert steps == [ln.split(",")[1] for ln in full_log[1:]] and "999.0" not in "".join(log)  # each step once


def test_cpu_bf16_stage_trains_under_autocast_with_explicit_attention_and_restores_it(tmp_path):
    """amp "bf16" on the CPU: every step runs under bf16 autocast with timm's explicit attention (the fused kernel's
    bf16 backward is ~10x slower there); afterwards the model is back to the fused kernel it ships with, so the
    end-of-training evaluation runs it as `benchmark.quality` does. amp "cuda" leaves the CPU in fp32."""
    from timm.optim import param_groups_layer_decay

    from zoo.train.loop import train_stage
    from zoo.train.objectives import FinetuneObjective
    from zoo.train.recipes import StageConfig

    from .helpers import dataset_of, tiny_classifier

    g = torch.Generator().manual_seed(0)
    data = dataset_of(torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g))
    for amp, expected in (("bf16", True), ("cuda", False)):
        model = tiny_classifier().train()
        attn = [m for m in model.modules() if hasattr(m, "fused_attn")]
        assert attn and all(m.fused_attn for m in attn)
        cfg = StageConfig(epochs=1, batch_size=16, lr=1e-3, warmup_epochs=0, amp=amp,
                          defenses={"adversarial_finetune": {"attack": "pgd", "eps": 0.1, "steps": 2}})
        objective = FinetuneObjective(model, cfg, seed=0)
        seen = []

        def step_fn(x, y, step):
            seen.append((torch.is_autocast_enabled("cpu"), [m.fused_attn for m in attn]))
            loss, logs = objective(x, y, step)
            assert loss.dtype == torch.float32 and torch.isfinite(loss)
            return loss, logs

        train_stage("finetune", objective, param_groups_layer_decay(model, 0.05), cfg, data, step_fn,
                    tmp_path / amp, 0, torch.device("cpu"))
        assert seen == [(expected, [not expected] * len(attn))] * 2, amp
        assert all(m.fused_attn for m in attn), amp


def test_amp_override_is_checked():
    from zoo.train.recipes import get_recipe
    recipe = get_recipe("mae_vit_t_fmnist_advft")
    assert recipe.finetune.amp == "bf16" and recipe.with_overrides(amp="cuda").finetune.amp == "cuda"
    with pytest.raises(ValueError, match="amp 'fp8'"):
        recipe.with_overrides(amp="fp8")
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--recipe", "mae_vit_t_fmnist_advft", "--amp", "fp8"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "invalid choice: 'fp8'" in proc.stderr


@pytest.mark.parametrize("option,value", [("--threads", "0"), ("--threads", "-1"), ("--max-steps", "0"),
                                          ("--batch-size", "-8"), ("--epochs", "0"), ("--epochs", "nan")])
def test_a_count_that_is_not_positive_is_one_line_and_exit_2(option, value, tmp_path, capsys):
    from zoo.train.__main__ import main
    assert main(["--recipe", "mae_vit_t_fmnist_advft", option, value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {option} must be positive, got ") and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_mim_from_fine_tunes_a_shipped_variant_without_pretraining_and_ships_its_mim_weights(tmp_path):
    """`--mim-from NAME`: no MIM stage (even for a recipe with one, spectral norm included); the classifier starts
    from the named model's encoder and the shipped MIM weights are that model's, tensor for tensor."""
    from safetensors.torch import load_file

    from zoo.registry import get_card

    name = "mae_vit_t_fmnist_regularized_advft"
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "--recipe", name, "--mim-from", name, "--max-steps", "2",
                           "--amp", "bf16", "--threads", "1", "--out", str(out), "--no-eval"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((out / "card.json").read_text())
    stages = card["training"]["stages"]
    assert "pretrain" not in stages and stages["mim_from"]["model"] == name and stages["finetune"]["steps"] == 2
    assert not (out / "log_pretrain.csv").exists()
    shipped = load_file(f"{get_card(name).local_dir}/mim.safetensors")
    written = load_file(out / "mim.safetensors")
    assert shipped.keys() == written.keys() and all(torch.equal(shipped[k], written[k]) for k in shipped)
    bad = subprocess.run([sys.executable, "-m", "zoo.train", "--recipe", name, "--mim-from", "no_such_model"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no_such_model" in bad.stderr


def test_torchrun_trains_with_ddp(tmp_path):
    """`torchrun --nproc_per_node 2 -m zoo.train`: two CPU processes (gloo), one output folder written by rank 0."""
    out = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "zoo.train", "--recipe", "mae_vit_t_fmnist", "--max-steps", "2", "--batch-size", "16",
                           "--threads", "1", "--out", str(out), "--no-eval"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["stages"]["finetune"]["steps"] == 2
    bundle = zoo.load_model(out)
    with torch.no_grad():
        assert torch.isfinite(bundle.classifier(torch.rand(2, 1, 28, 28))).all()


def test_the_card_measures_the_shipped_fp16_files_not_the_weights_in_memory(tmp_path, monkeypatch):
    """The trainer's end-of-training evaluation sees exactly the weights of the files it wrote (fp16), so the card
    agrees with `benchmark.quality` on them (the in-memory fp32 weights once disagreed by one test image)."""
    from zoo.checkpoints import read_state_dict
    from zoo.train import trainer
    from zoo.train.recipes import get_recipe

    seen = {}

    def capture(mim, classifier, dataset, device=None):
        seen["mim"] = {k: v.clone() for k, v in mim.state_dict().items()}
        seen["classifier"] = {k: v.clone() for k, v in classifier.state_dict().items()}
        return {"test_accuracy": 0.5}

    monkeypatch.setattr(trainer, "evaluate_quality", capture)
    recipe = get_recipe("mae_vit_t_fmnist").with_overrides(epochs=0.01)   # a few steps, both stages complete
    card = trainer.train(recipe, tmp_path, torch.device("cpu"))
    assert card["training"]["complete"] and card["metrics"] == {"test_accuracy": 0.5}
    for role in ("mim", "classifier"):
        shipped = read_state_dict(tmp_path / f"{role}.safetensors")
        assert shipped.keys() == seen[role].keys()
        for k, v in shipped.items():
            assert torch.equal(v.to(seen[role][k].dtype), seen[role][k]), (role, k)


def test_set_overrides_one_defense_setting_and_names_what_is_unknown(capsys):
    """`python -m zoo.train --set STAGE.DEFENSE.KEY=VALUE`: a copy of the recipe with that setting (JSON values),
    the registered recipe untouched; an unknown stage, defense or key is a one-line error with exit 2."""
    from zoo.train.__main__ import main
    from zoo.train.recipes import get_recipe
    base = get_recipe("mae_vit_t_fmnist_advft")
    r = base.with_setting("finetune.adversarial_finetune.attack=fgsm_rs").with_setting(
        "finetune.adversarial_finetune.steps=1")
    assert r.finetune.defenses["adversarial_finetune"] == {**base.finetune.defenses["adversarial_finetune"],
                                                           "attack": "fgsm_rs", "steps": 1}
    assert base.finetune.defenses["adversarial_finetune"]["attack"] == "pgd"
    for bad, why in (("finetune.adversarial_finetune.stepz=3", "has no setting 'stepz'"),
                     ("pretrain.mimir.eps=0.1", "has no defense 'mimir'"),
                     ("steps=3", "expected STAGE.DEFENSE.KEY=VALUE")):
        assert main(["--recipe", "mae_vit_t_fmnist_advft", "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert why in err and len(err.splitlines()) == 1
