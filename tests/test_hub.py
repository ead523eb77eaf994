"""Models from the Hugging Face Hub (`hf-hub:ORG/NAME[@REV]`), served offline from a cache the tests build."""
from __future__ import annotations

import csv
import fnmatch
import json
import os
import shutil

import pytest
import torch
from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError
from safetensors.torch import load_file, save_file

import zoo
from zoo import hub as zhub
from zoo import registry
from zoo.hub import HubRef, hub_cache_dir, parse_hub_ref
from zoo.registry import CheckpointSource, ModelCard, hub_source

from . import hf_models as H
from .test_cli import run_bench
from .test_cli_zoo import _one_line_exit_2, _Proc

TOL = 1e-5
COMMITS = {name: f"{i:x}" * 40 for i, name in enumerate(
    ["tiny-mae", "tiny-mae-fmnist", "tiny-beit-mim", "tiny-beit-cls", "tiny-beit-cls-token", "tiny-vit-cls"], 1)}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A Hugging Face cache holding six small test-org/* repositories, and the folders and models behind them."""
    root = tmp_path_factory.mktemp("hub")
    builders = {"tiny-mae": H.vitmae, "tiny-mae-fmnist": lambda f: H.vitmae(f, num_channels=1, image_size=28),
                "tiny-beit-mim": H.beit_mim, "tiny-beit-cls": H.beit_classifier,
                "tiny-beit-cls-token": lambda f: H.beit_classifier(f, use_mean_pooling=False),
                "tiny-vit-cls": H.vit_classifier}
    models, folders = {}, {}
    for name, build in builders.items():
        folders[name] = root / "folders" / name
        folders[name].mkdir(parents=True)
        models[name] = build(folders[name])
        H.put_in_hub_cache(root / "cache", f"test-org/{name}", folders[name], COMMITS[name])
    return root / "cache", folders, models


@pytest.fixture
def offline(hub, monkeypatch):
    """HF_HUB_CACHE at the test cache and HF_HUB_OFFLINE=1, set after huggingface_hub was imported."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub[0]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_hub_references_parse():
    assert parse_hub_ref("hf-hub:facebook/vit-mae-base") == HubRef("facebook/vit-mae-base", None)
    assert parse_hub_ref("hf-hub:a/b@v1.0") == HubRef("a/b", "v1.0") and str(HubRef("a/b", "v1.0")) == "hf-hub:a/b@v1.0"
    for bad in ("hf-hub:vit-mae-base", "hf-hub:a/b@", "hf-hub:a/b/c", "facebook/vit-mae-base"):
        with pytest.raises(zoo.CheckpointError, match="ORG/NAME"):
            parse_hub_ref(bad)


def test_cache_folder_follows_the_environment_at_call_time(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache_dir() == tmp_path / "hub"


@pytest.mark.parametrize("suffix", ["", "@main", f"@{COMMITS['tiny-mae']}"])
def test_a_hub_model_is_its_folder(offline, suffix):
    _, folders, _ = offline
    hub_bundle = zoo.load_model(f"hf-hub:test-org/tiny-mae{suffix}")
    dir_bundle = zoo.load_model(folders["tiny-mae"])
    assert hub_bundle.card.name == "test-org--tiny-mae" and hub_bundle.card.local_dir is None
    src = hub_bundle.card.mim_sources[0]
    assert (src.hub, src.revision, src.page) == ("test-org/tiny-mae", COMMITS["tiny-mae"],
                                                 "https://huggingface.co/test-org/tiny-mae")
    assert hub_bundle.card.arch == dir_bundle.card.arch
    assert hub_bundle.card.preprocessing == dir_bundle.card.preprocessing
    assert hub_bundle.files["mim"]["sha256"] == dir_bundle.files["mim"]["sha256"]
    assert "--classifier" in hub_bundle.missing["classifier"]
    x = torch.rand(2, 3, 32, 32)
    mask = hub_bundle.mim.make_mask([0, 1])
    with torch.no_grad():
        a, b = hub_bundle.mim.forward_mim(x, mask), dir_bundle.mim.forward_mim(x, mask)
    assert torch.equal(a.pred, b.pred) and torch.equal(a.loss, b.loss)


def test_a_beit_hub_model_with_pytorch_model_bin(offline):
    _, folders, models = offline
    assert (folders["tiny-beit-mim"] / "pytorch_model.bin").is_file()
    bundle = zoo.load_model("hf-hub:test-org/tiny-beit-mim")
    x, labels = torch.rand(2, 3, 32, 32), torch.randint(0, 40, (2, 64))
    mask = bundle.mim.make_mask([0, 1])
    with torch.no_grad():
        ref = models["tiny-beit-mim"](pixel_values=H.pixels(x), bool_masked_pos=mask, labels=labels[mask])
        out = bundle.mim.forward_mim(x, mask, target=labels)
    torch.testing.assert_close(out.pred, ref.logits, atol=TOL, rtol=0)


@pytest.mark.parametrize("name,family", [("tiny-beit-cls", "beit_classifier"),
                                         ("tiny-beit-cls-token", "beit_classifier"),
                                         ("tiny-vit-cls", "vit_classifier")])
def test_a_hub_classifier_paired_with_a_mim_checkpoint_reproduces_transformers(offline, name, family):
    _, folders, models = offline
    bundle = zoo.load_model("hf-hub:test-org/tiny-mae", classifier=f"hf-hub:test-org/{name}")
    assert bundle.mim is not None and bundle.card.name == "test-org--tiny-mae" and "classifier" not in bundle.missing
    assert bundle.card.classifier_family == family and bundle.card.expected_top1 is None
    assert bundle.card.classifier_sources[0].revision == COMMITS[name]
    assert bundle.card.classifier_arch["mean"] == H.MEAN  # the classifier's own normalisation, recorded
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        ref = models[name](pixel_values=H.pixels(x)).logits
        logits = bundle.classifier(x)
    torch.testing.assert_close(logits, ref, atol=TOL, rtol=0)
    assert logits.shape == ref.shape and (logits - ref).abs().max() < TOL
    from_folder = zoo.load_model(folders["tiny-mae"], classifier=folders[name])  # a transformers folder works too
    assert from_folder.files["classifier"]["sha256"] == bundle.files["classifier"]["sha256"]


def test_a_hub_classifier_alone_is_a_bundle_without_mim(offline):
    bundle = zoo.load_model("hf-hub:test-org/tiny-vit-cls")
    assert bundle.mim is None and bundle.classifier is not None and bundle.card.family == "vit_classifier"
    assert "holds no MIM model" in bundle.missing["mim"]


def test_refusals_are_one_line_checkpoint_errors(offline, tmp_path):
    with pytest.raises(zoo.CheckpointError, match="a ViTMAEForPreTraining model, not a classifier"):
        zoo.load_model("hf-hub:test-org/tiny-mae", classifier="hf-hub:test-org/tiny-mae")
    with pytest.raises(zoo.CheckpointError, match="not both"):
        zoo.load_model("mae_vit_t_fmnist", classifier="hf-hub:test-org/tiny-vit-cls",
                       classifier_checkpoint=tmp_path / "x.pth")
    with pytest.raises(zoo.CheckpointError, match="brings its own weights"):
        zoo.load_model("hf-hub:test-org/tiny-mae", checkpoint=tmp_path / "x.pth")
    with pytest.raises(zoo.MissingCheckpointError) as info:
        zoo.load_model("hf-hub:test-org/nothing-here")
    msg = str(info.value)
    assert "\n" not in msg and "hf-hub:test-org/nothing-here" in msg and str(offline[0]) in msg
    with pytest.raises(zoo.MissingCheckpointError) as info:
        zoo.load_model("hf-hub:test-org/tiny-mae@v2")
    msg = str(info.value)
    assert "\n" not in msg and "revision v2" in msg and "main -> " + COMMITS["tiny-mae"][:12] in msg


def test_cli_errors_exit_2_in_one_line(offline, capsys, tmp_path):
    out = str(tmp_path / "out")
    proc = _Proc(["--model", "hf-hub:test-org/nothing-here", "--target", "reconstruction", "--out", out], capsys)
    _one_line_exit_2(proc, "hf-hub:test-org/nothing-here", "not in the Hugging Face cache", str(offline[0]))
    proc = _Proc(["--model", "hf-hub:test-org/tiny-mae@v2", "--target", "reconstruction", "--out", out], capsys)
    _one_line_exit_2(proc, "revision v2", "not in the Hugging Face cache")
    proc = _Proc(["--model", "hf-hub:test-org/tiny-mae", "--classifier", "hf-hub:test-org/tiny-beit-mim", "--out", out],
                 capsys)
    _one_line_exit_2(proc, "not a classifier")
    proc = _Proc(["--model", "mae_vit_t_fmnist", "--classifier", "hf-hub:test-org/tiny-vit-cls",
                  "--classifier-checkpoint", "x.pth", "--out", out], capsys)
    _one_line_exit_2(proc, "not both")
    assert not (tmp_path / "out").exists()


def test_a_registry_card_loads_its_hub_source_from_the_cache_offline(offline, monkeypatch, tmp_path):
    """The card's file is missing and not downloadable; the same weights in the Hugging Face cache are used."""
    _, folders, _ = offline
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path))
    arch = dict(zoo.load_model(folders["tiny-mae"]).card.arch, norm_layer_eps=1e-6)  # the card's own architecture
    card = ModelCard(name="tiny_hub_card", family="mae", arch=arch, dataset="imagenet",
                     preprocessing={"mean": H.MEAN, "std": H.STD},
                     mim_sources=[CheckpointSource("tiny.pth", "http://127.0.0.1:9/tiny.pth"),
                                  hub_source("test-org/tiny-mae", COMMITS["tiny-mae"], "the same weights")])
    monkeypatch.setitem(registry.MODELS._items, card.name, card)
    bundle = zoo.load_model("tiny_hub_card")
    direct = zoo.load_model(folders["tiny-mae"]).mim.state_dict()
    assert all(torch.equal(v, direct[k]) for k, v in bundle.mim.state_dict().items() if "normalizer" not in k)
    assert bundle.files["mim"]["path"].startswith(str(offline[0]))
    pinned_elsewhere = hub_source("test-org/tiny-mae", "f" * 40, "a commit that is not in the cache")
    monkeypatch.setitem(registry.MODELS._items, card.name, ModelCard(**dict(card.to_dict(), mim_sources=[
        card.mim_sources[0], pinned_elsewhere])))
    with pytest.raises(zoo.MissingCheckpointError) as info:
        zoo.load_model("tiny_hub_card")
    msg = str(info.value)
    assert "\n" not in msg and "http://127.0.0.1:9/tiny.pth" in msg
    assert str(tmp_path / "checkpoints" / "tiny.pth") in msg
    assert f"hf-hub:test-org/tiny-mae@{'f' * 40}" in msg and str(offline[0]) in msg


def test_list_models_names_the_hub_sources_and_their_pins(offline, capsys):
    proc = _Proc(["--list-models"], capsys)
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert "hub mim: facebook/vit-mae-base@25b184bea553, not cached (ViTMAEForPreTraining: mae_visualize_vit_base.pth" \
        in rows["mae_vit_b"]
    assert "hub classifier: microsoft/beit-base-patch16-224@main (unpinned)" in rows["beit_b"]
    assert "hub: none" in rows["simmim_vit_b"] and "hub" not in rows["mae_vit_t_fmnist"]
    assert f"Hugging Face cache: {offline[0]}" in proc.stdout


def _rows(out) -> list[dict]:
    with open(out / "fashion_mnist" / "reconstruction.csv") as f:
        return [{k: v for k, v in row.items() if k != "model"} for row in csv.DictReader(f)]


def test_run_bench_on_a_hub_model_offline_gives_the_numbers_of_its_folder(offline, tmp_path, capsys, monkeypatch):
    """`run_bench.py --model hf-hub:ORG/NAME` in a fresh process (HF_HUB_OFFLINE=1 from the start) = `--model DIR`."""
    cache, folders, _ = offline
    args = ["--dataset", "fashion_mnist", "--target", "reconstruction", "--n-examples", "8", "--batch-size", "8",
            "--no-progress"]
    proc = run_bench("--model", "hf-hub:test-org/tiny-mae-fmnist", *args, "--out", str(tmp_path / "hub_out"),
                     env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                          "MIMBENCH_HOME": str(tmp_path / "home_hub")})
    assert proc.returncode == 0, proc.stderr
    assert "test-org--tiny-mae-fmnist" in proc.stdout
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path / "home_dir"))  # no records shared with the first run
    local = _Proc(["--model", str(folders["tiny-mae-fmnist"]), *args, "--out", str(tmp_path / "dir_out")], capsys)
    assert local.returncode == 0, local.stderr
    hub_rows, dir_rows = _rows(tmp_path / "hub_out"), _rows(tmp_path / "dir_out")
    assert len(hub_rows) == 4 and hub_rows == dir_rows
    assert os.environ["HF_HUB_OFFLINE"] == "1"


class _FakeHub:
    """huggingface_hub's two download calls, online, over local folders: what mimbench asks for and in which order."""

    def __init__(self, repos: dict, cache, missing_repo: bool = False) -> None:
        self.repos, self.cache, self.missing_repo, self.calls = repos, cache, missing_repo, []

    def _snap(self, repo_id):
        return self.cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / ("c" * 40)

    def snapshot_download(self, repo_id, *, revision, allow_patterns, cache_dir, local_files_only):
        assert not local_files_only and cache_dir == str(self.cache)
        self.calls.append(("snapshot", tuple(allow_patterns)))
        if self.missing_repo:
            exc = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
            Exception.__init__(exc, "404 Client Error: Repository Not Found")
            raise exc
        snap = self._snap(repo_id)
        snap.mkdir(parents=True, exist_ok=True)
        for f in self.repos[repo_id].iterdir():
            if any(fnmatch.fnmatch(f.name, pat) for pat in allow_patterns):
                shutil.copy(f, snap / f.name)
        return str(snap)

    def hf_hub_download(self, repo_id, filename, *, revision, cache_dir, local_files_only):
        assert revision == "c" * 40 and not local_files_only
        self.calls.append(("file", filename))
        if not (self.repos[repo_id] / filename).is_file():
            raise EntryNotFoundError(f"404: {filename}")
        return shutil.copy(self.repos[repo_id] / filename, self._snap(repo_id) / filename)


def test_online_only_the_files_mimbench_loads_are_fetched_safetensors_first(hub, tmp_path, monkeypatch):
    _, folders, _ = hub
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    state = load_file(str(folders["tiny-mae"] / "model.safetensors"))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[:10], "model-00002-of-00002.safetensors": keys[10:]}
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(sharded / name))
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: name for name, part in shards.items() for k in part}}))
    for f in ("config.json", "preprocessor_config.json"):
        (sharded / f).write_text((folders["tiny-mae"] / f).read_text())
    for folder in (folders["tiny-beit-mim"], sharded):
        (folder / "tf_model.h5").write_bytes(b"never fetched")
    fake = _FakeHub({"o/beit": folders["tiny-beit-mim"], "o/sharded": sharded}, tmp_path / "cache")
    monkeypatch.setattr(zhub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(zhub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setattr(zhub, "_unreachable", lambda: None)
    for var in ("HF_HUB_OFFLINE", "MIMBENCH_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    bundle = zoo.load_model("hf-hub:o/beit")
    assert fake.calls == [("snapshot", ("config.json", "preprocessor_config.json", "*.index.json")),
                          ("file", "model.safetensors"), ("file", "pytorch_model.bin")]
    assert bundle.files["mim"]["path"].endswith("pytorch_model.bin")
    fake.calls.clear()
    bundle = zoo.load_model("hf-hub:o/sharded")
    assert fake.calls[1] == ("snapshot", tuple(sorted(shards))) and len(fake.calls) == 2
    direct = zoo.load_model(folders["tiny-mae"]).mim.state_dict()
    assert all(torch.equal(v, direct[k]) for k, v in bundle.mim.state_dict().items())
    assert not any(p.name == "tf_model.h5" for p in (tmp_path / "cache").rglob("*"))
    fake.missing_repo = True
    with pytest.raises(zoo.CheckpointError, match="hf-hub:o/gone: no such model repository on the Hub"):
        zoo.load_model("hf-hub:o/gone")
