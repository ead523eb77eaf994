"""ImageNet: the fixed, class-balanced 5000-image subset of a validation folder, with the card's preprocessing."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from zoo import data
from zoo.data import DatasetError, eval_transform, imagenet_subset, load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory):
    """A validation folder of 3 classes x 7 images of different sizes, in the ImageNet layout."""
    root = tmp_path_factory.mktemp("imagenet") / "val"
    rng = np.random.default_rng(0)
    for c, wnid in enumerate(["n01440764", "n01443537", "n01484850"]):
        (root / wnid).mkdir(parents=True)
        for i in range(7):
            h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                root / wnid / f"ILSVRC2012_val_{c * 100 + (7 - i):08d}.JPEG", format="PNG")
    return root


def test_subset_is_class_balanced_round_robin_by_file_name(val_dir):
    files, labels, classes = imagenet_subset(val_dir, per_class=5)
    assert classes == ["n01440764", "n01443537", "n01484850"]
    assert labels == [0, 1, 2] * 5 and len(files) == 15
    assert [f.parent.name for f in files[:3]] == classes
    first = sorted((val_dir / "n01443537").iterdir())[:5]
    assert [f for f, lab in zip(files, labels) if lab == 1] == first  # the first 5 by file name, in order


def test_eval_transform_is_the_authors_resize_and_centre_crop(val_dir):
    img = Image.open(sorted((val_dir / "n01440764").iterdir())[0]).convert("RGB")
    ours = eval_transform({"resize": 73, "crop": 64, "interpolation": "bicubic"})(img)
    ref = transforms.Compose([transforms.Resize(73, interpolation=transforms.InterpolationMode.BICUBIC),
                              transforms.CenterCrop(64), transforms.ToTensor()])(img)
    assert ours.shape == (3, 64, 64) and torch.equal(ours, ref) and 0 <= ours.min() and ours.max() <= 1
    squash = eval_transform({"resize": [64, 64], "crop": 64, "interpolation": "bilinear"})(img)
    ref = transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor()])(img)
    torch.testing.assert_close(squash, ref)


def test_load_imagenet_is_lazy_and_ordered(val_dir, monkeypatch):
    monkeypatch.setattr(data, "IMAGENET_NUM_CLASSES", 3)
    ds = load_dataset("imagenet", "test", data_dir=str(val_dir.parent),
                      preprocessing={"resize": 73, "crop": 64, "interpolation": "bicubic", "mean": [0.5] * 3})
    assert len(ds) == 15 and ds.images.shape == (15, 3, 64, 64) and ds.sample_ids.tolist() == list(range(15))
    sub = ds.subset(4)
    assert isinstance(sub.images, data.LazyImages) and sub.labels.tolist() == [0, 1, 2, 0]
    batch = sub.images[torch.tensor([3, 0])]
    assert batch.shape == (2, 3, 64, 64) and torch.equal(batch[1], ds.images[0])


def test_imagenet_refusals(val_dir):
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("imagenet", "test")
    with pytest.raises(DatasetError, match="3 class folders.*1000"):
        load_dataset("imagenet", "test", data_dir=str(val_dir))
    with pytest.raises(DatasetError, match="8 per class"):
        imagenet_subset(val_dir, per_class=8)
