"""The GPU recipes (MIMIR's published CIFAR-10 / ImageNet settings) stay runnable: each runs 2 steps of every stage
on the CPU, at its full architecture and defenses, on a few synthetic images of the recipe's shape (the real
datasets are not on this machine; only the batch sizes are reduced, to 2 and 1), and yields a model that loads strictly."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.data import ImageDataset
from zoo.train import trainer
from zoo.train.recipes import RECIPES, get_recipe

GPU_RECIPES = sorted(n for n, r in RECIPES.items() if not r.runs_here)


def _synthetic(name: str, in_chans: int, size: int, num_classes: int, n: int = 4) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, in_chans, size, size, generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return ImageDataset(name, "train", images, labels, torch.arange(n), tuple(map(str, range(num_classes))),
                        "synthetic (test)")


def test_there_are_gpu_recipes():
    assert {"mae_vit_b_cifar10_mimir", "mae_vit_b_imagenet_mimir"} <= set(GPU_RECIPES)


@pytest.mark.slow
@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipe_two_steps_on_cpu(name, tmp_path, monkeypatch):
    recipe = get_recipe(name).with_overrides(batch_size=2)
    recipe.finetune.batch_size = 1  # PGD-10 fine-tuning of a ViT-B dominates the cost; MIMIR's HSIC needs 2
    arch = recipe.arch
    data = _synthetic(recipe.dataset, arch["in_chans"], arch["img_size"], recipe.num_classes)
    monkeypatch.setattr(trainer, "load_dataset", lambda dataset, split: data)
    card = trainer.train(recipe, tmp_path, torch.device("cpu"), max_steps=2, evaluate=False)
    for stage in ("pretrain", "finetune"):
        s = card["training"]["stages"][stage]
        assert s["steps"] == 2 and not s["complete"], s
    assert card["defenses"] == recipe.defenses and card["training"]["complete"] is False
    bundle = zoo.load_model(tmp_path)
    assert bundle.card.arch["embed_dim"] == 768 and bundle.card.arch["img_size"] == arch["img_size"]
    x = data.images[:1]
    with torch.no_grad():
        logits = bundle.classifier(x)
        assert logits.shape == (1, recipe.num_classes) and torch.isfinite(logits).all()
        out = bundle.mim.forward_mim(x, bundle.mim.make_mask([0]))
        assert torch.isfinite(out.reconstruction).all()
