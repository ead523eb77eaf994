"""Checkpoint reading is safe and strict."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

import zoo
from zoo.checkpoints import read_state_dict, save_weights

from .helpers import official_arch, tiny_mae


def test_missing_and_foreign_keys_are_listed(tmp_path, official_dir):
    family, arch = official_arch("mae")
    sd = torch.load(official_dir / "mae.pth", weights_only=True)["model"]
    dropped = dict(sd)
    dropped.pop("blocks.0.attn.qkv.weight")
    torch.save({"model": dropped}, tmp_path / "dropped.pth")
    with pytest.raises(zoo.CheckpointError, match=r"missing 1 key\(s\): blocks.0.attn.qkv.weight"):
        zoo.load_checkpoint(zoo.build(family, **arch, mean=0, std=1), tmp_path / "dropped.pth")
    foreign = dict(sd, **{"head.weight": torch.zeros(3, 3)})
    torch.save({"model": foreign}, tmp_path / "foreign.pth")
    with pytest.raises(zoo.CheckpointError, match=r"foreign 1 key\(s\): head.weight"):
        zoo.load_checkpoint(zoo.build(family, **arch, mean=0, std=1), tmp_path / "foreign.pth")


def test_encoder_only_file_gets_a_decoder_message(tmp_path, official_dir):
    card = zoo.get_card("mae_vit_b")
    sd = torch.load(official_dir / "mae.pth", weights_only=True)["model"]
    enc = {k: v for k, v in sd.items() if not k.startswith("decoder") and k != "mask_token"}
    torch.save({"model": enc}, tmp_path / "enc.pth")
    family, arch = official_arch("mae")
    model = zoo.build(family, **arch, mean=0, std=1)
    from zoo.registry import encoder_only_hint
    model.checkpoint_hint = encoder_only_hint(card)
    with pytest.raises(zoo.CheckpointError, match="decoder is missing.*mae_visualize_vit_base.pth"):
        zoo.load_checkpoint(model, tmp_path / "enc.pth")


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mimbench_pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = "/tmp/mimbench_pwned"
    if os.path.exists(marker):
        os.unlink(marker)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": {"w": _Boom()}}, f)
    with pytest.raises(zoo.CheckpointError, match="refused"):
        read_state_dict(path)
    assert not os.path.exists(marker)


def test_truncated_file_is_refused(tmp_path, official_dir):
    data = (official_dir / "mae.pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(zoo.CheckpointError, match="truncated|unreadable"):
        read_state_dict(path)


def test_fp16_safetensors_round_trip(tmp_path):
    model = tiny_mae()
    digest = save_weights(model, tmp_path / "w.safetensors")
    assert len(digest) == 64
    other = tiny_mae(embed_dim=32)
    torch.nn.init.zeros_(other.decoder_pred.weight)
    zoo.load_checkpoint(other, tmp_path / "w.safetensors")
    torch.testing.assert_close(other.decoder_pred.weight, model.decoder_pred.weight.half().float())


def test_same_weights_and_metadata_give_the_same_bytes(tmp_path):
    """safetensors writes `__metadata__` in a random order; save_weights sorts it, so a re-run leaves files (and
    their sha256, and git) unchanged, and the file still reads back whole."""
    from safetensors import safe_open
    state = {"w": torch.arange(6.0).view(2, 3), "step": torch.tensor([3])}
    metadata = {str(k): f"value {k}" for k in range(16)}
    digests = {save_weights(state, tmp_path / f"w{i}.safetensors", metadata=metadata) for i in range(4)}
    assert len(digests) == 1
    with safe_open(str(tmp_path / "w0.safetensors"), "pt") as f:
        assert f.metadata() == metadata
        assert torch.equal(f.get_tensor("w"), state["w"].half()) and torch.equal(f.get_tensor("step"), state["step"])
    header = (tmp_path / "w0.safetensors").read_bytes()
    assert header.index(b'"0":') < header.index(b'"1":') < header.index(b'"10":') < header.index(b'"9":')
