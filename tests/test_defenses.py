"""Every recipe of the embedded default runs for 2 steps and yields a loadable model; defenses behave."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.train import defenses as D
from zoo.train.objectives import FinetuneObjective, MIMPretrainObjective
from zoo.train.recipes import RECIPES, StageConfig, get_recipe

from .helpers import tiny_classifier, tiny_mae

LOCAL_RECIPES = sorted(n for n, r in RECIPES.items() if r.runs_here)


def test_every_defense_of_the_vocabulary_is_known():
    assert set(D.ALL_DEFENSES) == set(D.DEFAULTS)
    used = {d for r in (r for _, r in RECIPES.items()) for d in r.defenses}
    assert used <= set(D.ALL_DEFENSES)
    shipped_defended = [n for n in LOCAL_RECIPES if n != "mae_vit_t_fmnist"]
    assert len(shipped_defended) >= 5 and "mae_vit_t_fmnist_advft" in shipped_defended


@pytest.mark.parametrize("name", LOCAL_RECIPES)
def test_recipe_two_steps_loadable(name, tmp_path):
    from zoo.registry import WEIGHTS_DIR
    recipe = get_recipe(name).with_overrides(batch_size=16)
    if recipe.init_from and not (WEIGHTS_DIR / recipe.init_from / "mim.safetensors").is_file():
        pytest.fail(f"{name} starts from {recipe.init_from}, whose shipped weights are missing")
    from zoo.train.trainer import train
    card = train(recipe, tmp_path, torch.device("cpu"), max_steps=2, evaluate=False)
    assert card["defenses"] == recipe.defenses
    bundle = zoo.load_model(tmp_path)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.isfinite(bundle.classifier(x)).all()
        out = bundle.mim.forward_mim(x, bundle.mim.make_mask([0, 1]))
        assert torch.isfinite(out.reconstruction).all()


def test_spectral_norm_is_baked_into_official_keys():
    model = tiny_mae()
    keys = set(model.state_dict())
    D.apply_spectral_norm(model.train())
    model.forward_mim(torch.rand(4, 1, 28, 28), model.make_mask(range(4))).loss.backward()
    D.remove_spectral_norm(model)
    assert set(model.state_dict()) == keys
    w = model.blocks[0].attn.qkv.weight
    assert torch.linalg.matrix_norm(w, ord=2) < 1.5  # normalised (power iteration is approximate)


def test_guided_masks_prefer_salient_patches_at_the_same_ratio():
    from zoo import masking
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, :8, :8] = torch.rand(64, 1, 8, 8)  # texture only in the top-left 2x2 patches
    ids = torch.arange(64)
    for scores in (masking.patch_saliency(x, 4), masking.patch_entropy(x, 4) + 1e-3):
        m = masking.scored_mask(scores, 0.75, ids)
        assert (m.sum(1) == 37).all()
        assert m[:, [0, 1, 7, 8]].float().mean() > m.float().mean() + 0.1


def test_unknown_defense_or_setting_is_refused():
    with pytest.raises(KeyError, match="unknown defense"):
        MIMPretrainObjective(tiny_mae(), StageConfig(defenses={"magic": {}}), 0)
    with pytest.raises(KeyError, match="does not apply"):
        FinetuneObjective(tiny_classifier(), StageConfig(defenses={"mimir": {}}), 0)
    with pytest.raises(KeyError, match="no setting"):
        D.settings({"trades": {"gamma": 1}}, "trades")


def test_adversarial_finetune_trains_on_attacked_images():
    clf = tiny_classifier().train()
    obj = FinetuneObjective(clf, StageConfig(defenses={"adversarial_finetune": {"steps": 2}}), 0)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss, logs = obj(x, y, 0)
    with torch.no_grad():
        clean = torch.nn.functional.cross_entropy(clf.eval()(x), y)
    assert loss > clean and "adv_acc" in logs
