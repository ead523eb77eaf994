"""Hugging Face transformers folders load through `zoo.load_model(DIR)` and compute what transformers computes."""
from __future__ import annotations

import json

import pytest
import torch
import transformers

import zoo

TOL = 1e-5
MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.3, 0.25]

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random values in every tensor (biases, layer scales, ...), so that no mapping error can hide behind a 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if "layernorm" in name and "weight" in name else 0.0))


def _save(model, processor, folder, safe: bool = True):
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not safe:  # the pytorch_model.bin of older transformers versions (a pickled state dict)
        from safetensors.torch import load_file
        torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    return folder


def _pixels(x01: torch.Tensor) -> torch.Tensor:
    return (x01 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def hf_mae(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.ViTMAEConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, decoder_hidden_size=16,
                                    decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                                    decoder_intermediate_size=32, layer_norm_eps=0.05, norm_pix_loss=True)
    model = transformers.ViTMAEForPreTraining(cfg).eval()
    _randomise(model, 1)
    proc = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD,
                                          resample=3)
    return model, _save(model, proc, tmp_path_factory.mktemp("hf_mae"))


@pytest.fixture(scope="module")
def hf_beit(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.BeitConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, vocab_size=40, use_mask_token=True,
                                  use_shared_relative_position_bias=True, use_relative_position_bias=True,
                                  use_absolute_position_embeddings=True, layer_scale_init_value=0.1,
                                  layer_norm_eps=0.05)
    model = transformers.BeitForMaskedImageModeling(cfg).eval()
    _randomise(model, 2)
    proc = transformers.BeitImageProcessor(size={"height": 32, "width": 32}, do_center_crop=False, image_mean=MEAN,
                                           image_std=STD)
    return model, _save(model, proc, tmp_path_factory.mktemp("hf_beit"), safe=False)


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
    (bad / "config.json").write_text(json.dumps(dict(cfg, architectures=["BeitForImageClassification"])))
    with pytest.raises(zoo.CheckpointError, match="mimbench loads ViTMAEForPreTraining and BeitForMaskedImageModeling"):
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
