"""Hugging Face transformers folders load through `zoo.load_model(DIR)` and compute what transformers computes."""
from __future__ import annotations

import json

import pytest
import torch

import zoo

from . import hf_models as H
from .hf_models import MEAN
from .hf_models import pixels as _pixels

TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hf_mae(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_mae")
    return H.vitmae(folder), folder


@pytest.fixture(scope="module")
def hf_beit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_beit")
    return H.beit_mim(folder, safe=False), folder


def test_vitmae_folder_matches_transformers(hf_mae):
    model, folder = hf_mae
    bundle = zoo.load_model(folder)
    assert bundle.card.family == "mae" and bundle.classifier is None and "no classifier" in bundle.missing["classifier"]
    assert bundle.card.arch["norm_layer_eps"] == 0.05 and bundle.card.arch["norm_pix_loss"] is True
    assert bundle.card.preprocessing["mean"] == MEAN and bundle.card.preprocessing["interpolation"] == "bicubic"
    x = torch.rand(2, 3, 32, 32)
    noise = torch.rand(2, 64)
    with torch.no_grad():
        ref = model(pixel_values=_pixels(x), noise=noise)
        out = bundle.mim.forward_mim(x, ref.mask.bool())
    torch.testing.assert_close(out.pred, ref.logits, atol=TOL, rtol=0)
    torch.testing.assert_close(out.loss, ref.loss, atol=TOL, rtol=0)


def test_beit_folder_matches_transformers(hf_beit):
    model, folder = hf_beit
    assert (folder / "pytorch_model.bin").is_file() and not (folder / "model.safetensors").exists()
    bundle = zoo.load_model(folder)
    assert bundle.card.family == "beit" and bundle.card.arch["use_rel_pos_bias"] and bundle.card.arch["use_abs_pos_emb"]
    x = torch.rand(2, 3, 32, 32)
    mask = bundle.mim.make_mask([0, 1])
    labels = torch.randint(0, 40, (2, 64))
    with torch.no_grad():
        ref = model(pixel_values=_pixels(x), bool_masked_pos=mask, labels=labels[mask])
        out = bundle.mim.forward_mim(x, mask, target=labels)
    torch.testing.assert_close(out.pred, ref.logits, atol=TOL, rtol=0)
    torch.testing.assert_close(out.loss, ref.loss, atol=TOL, rtol=0)
    assert out.reconstruction is None


def test_hf_folder_refusals(hf_beit, tmp_path):
    _, folder = hf_beit
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = json.loads((folder / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(dict(cfg, architectures=["BeitForSemanticSegmentation"])))
    with pytest.raises(zoo.CheckpointError, match="mimbench loads ViTMAEForPreTraining, BeitForMaskedImageModeling, "
                                                  "BeitForImageClassification and ViTForImageClassification"):
        zoo.load_model(bad)
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "pytorch_model.bin").write_bytes((folder / "pytorch_model.bin").read_bytes())
    with pytest.raises(zoo.CheckpointError, match="no preprocessor_config.json"):
        zoo.load_model(bad)
    (bad / "preprocessor_config.json").write_text((folder / "preprocessor_config.json").read_text())
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state.pop("lm_head.bias")
    torch.save(state, bad / "pytorch_model.bin")
    with pytest.raises(zoo.CheckpointError, match=r"missing 1 key\(s\): lm_head.bias"):
        zoo.load_model(bad)


def test_sharded_folder_loads_the_same(hf_mae, tmp_path):
    from safetensors.torch import load_file, save_file
    _, folder = hf_mae
    state = load_file(str(folder / "model.safetensors"))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(tmp_path / name))
    index = {"metadata": {}, "weight_map": {k: name for name, part in shards.items() for k in part}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    for f in ("config.json", "preprocessor_config.json"):
        (tmp_path / f).write_text((folder / f).read_text())
    whole, sharded = zoo.load_model(folder).mim, zoo.load_model(tmp_path).mim
    assert all(torch.equal(v, sharded.state_dict()[k]) for k, v in whole.state_dict().items())
