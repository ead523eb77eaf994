"""The published checkpoints' layouts load strictly and completely: stand-in files with a random tensor per key
of `official_key_manifests.json` (every key and shape of the real files), through `zoo.load_model`."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.checkpoints import sha256sum

from .helpers import OFFICIAL

# registry name -> manifest titles (their first words) of the MIM file and the fine-tuned classifier file
CASES = {
    "mae_vit_b": ("mae_vit_base_patch16 ", "models_vit.vit_base_patch16("),
    "mae_vit_l": ("mae_vit_large_patch16 ", "models_vit.vit_large_patch16("),
    # SimMIM's fine-tuned ViT-B is the BEiT-style ViT with the same keys as BEiT-B's fine-tuned file
    "simmim_vit_b": ("SimMIM ViT-B/16 pretrain", "BEiT-B/16 fine-tuned"),
    "beit_b": ("BEiT-B/16 pretrain", "BEiT-B/16 fine-tuned"),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _manifest(title: str) -> dict[str, list[int]]:
    manifests = json.loads((OFFICIAL / "official_key_manifests.json").read_text())
    (key,) = [k for k in manifests if k.startswith(title)]
    return manifests[key]


def _standin(title: str, seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A random tensor per key: a window at a random offset of one random pool (random, and fast at 300M values)."""
    g = torch.Generator().manual_seed(seed)
    pool = torch.empty(1 << 20).uniform_(-0.05, 0.05, generator=g).to(dtype)
    pool = torch.cat([pool, pool])  # any window of pool-size starting in the first half is contiguous
    size = pool.numel() // 2
    out = {}
    for k, shape in _manifest(title).items():
        t = torch.empty(shape, dtype=dtype).view(-1)
        start = int(torch.randint(0, size, (1,), generator=g))
        for pos in range(0, t.numel(), size):
            chunk = min(size, t.numel() - pos)
            t[pos:pos + chunk] = pool[start:start + chunk]
        out[k] = t.view(shape)
    return out


class _Standins:
    """Stand-in files made once per module: (state dict, path) by (manifest title, official format or not)."""

    def __init__(self, folder):
        self.folder, self.cache = folder, {}

    def get(self, title: str, official_name: str | None = None, dtype: torch.dtype = torch.float32):
        key = (title, official_name, dtype)
        if key not in self.cache:
            sd = _standin(title, len(self.cache), dtype)
            if official_name:  # the authors' format: {'model': state_dict} pickled by torch.save
                path = self.folder / official_name
                torch.save({"model": sd}, path)
            else:  # safetensors, which mimbench accepts too
                path = self.folder / f"standin{len(self.cache)}.safetensors"
                save_file(sd, str(path))
            self.cache[key] = (sd, path)
        return self.cache[key]


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    return _Standins(tmp_path_factory.mktemp("standins"))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.endswith("_l") else n for n in CASES])
def test_published_layout_loads_strictly_and_runs(name, standins):
    card = zoo.get_card(name)
    large = name.endswith("_l")  # ViT-L: fp16 safetensors, to halve the I/O
    mim_sd, mim_file = standins.get(CASES[name][0], None if large else card.mim_sources[0].filename,
                                    torch.float16 if large else torch.float32)
    clf_sd, clf_file = standins.get(CASES[name][1], None, torch.float16 if large else torch.float32)
    bundle = zoo.load_model(name, checkpoint=mim_file, classifier_checkpoint=clf_file)
    for model, sd in ((bundle.mim, mim_sd), (bundle.classifier, clf_sd)):
        state = model.state_dict()
        assert set(state) == {k for k in sd if not k.endswith("relative_position_index")}
        # every tensor in its place (ViT-L: the non-block tensors and the first and last blocks)
        keys = [k for k in state if not large or not k.startswith("blocks.") or k.startswith(("blocks.0.", "blocks.23."))]
        assert all(torch.equal(state[k], sd[k].float()) for k in keys)
    if name == "mae_vit_b":  # the digest recorded for the run's entry (hashing is slow: one case checks it)
        assert bundle.files["mim"]["sha256"] == sha256sum(mim_file)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        out = bundle.mim.forward_mim(x, bundle.mim.make_mask([0]))
    expected_pred = {"mae": (1, 196, 768), "simmim": (1, 3, 224, 224), "beit": (1, 196, 8192)}[card.family]
    assert tuple(out.pred.shape) == expected_pred and torch.isfinite(out.pred).all()
    if card.family == "beit":
        assert out.reconstruction is None and out.loss is None
    else:
        assert out.reconstruction.shape == x.shape and torch.isfinite(out.loss)
    assert bundle.classifier.head.out_features == 1000


def test_dropped_foreign_or_wrong_file_refused(standins, tmp_path):
    sd, _ = standins.get(CASES["beit_b"][0], "beit_base_patch16_224_pt22k.pth")
    changed = {k: v for k, v in sd.items() if k != "blocks.7.attn.q_bias"}
    changed["blocks.0.attn.k_bias"] = torch.zeros(768)
    save_file(changed, str(tmp_path / "changed.safetensors"))
    with pytest.raises(zoo.CheckpointError, match=r"missing 1 key\(s\): blocks.7.attn.q_bias; "
                                                  r"foreign 1 key\(s\): blocks.0.attn.k_bias$"):
        zoo.load_model("beit_b", checkpoint=tmp_path / "changed.safetensors")
    # the fine-tuned file where the pre-training file belongs: the message names the file that has the head
    _, ft_file = standins.get(CASES["beit_b"][1])
    with pytest.raises(zoo.CheckpointError, match=r"lm_head\) is missing.*beit_base_patch16_224_pt22k.pth"):
        zoo.load_model("beit_b", checkpoint=ft_file)
