"""Evaluation and training datasets as tensors in [0, 1], with stable sample ids (id = index in the split).

Fashion-MNIST is read from Debian's `dataset-fashion-mnist` package when present, else downloaded through
torchvision into the cache; CIFAR-10 through torchvision. ImageNet is a validation folder given by the user,
evaluated on a fixed class-balanced subset (see `imagenet_subset`), decoded lazily with the model card's
preprocessing (timm's eval transforms). The order of a split never changes, so `--n-examples N` means the
first N ids.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGENET_NUM_CLASSES = 1000
IMAGENET_PER_CLASS = 5          # 5 x 1000 = the 5000-image evaluation subset
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_IMAGENET_PREPROCESSING = {"resize": 256, "crop": 224, "interpolation": "bicubic"}


class DatasetError(RuntimeError):
    """A dataset that is not on this machine and cannot be fetched; the message says how to get it."""


class LazyImages:
    """Images decoded from files when indexed, so a 5000-image ImageNet subset never sits in memory.

    Indexing with a slice gives another LazyImages; with positions (tensor, list, int) a float tensor
    N x C x H x W in [0, 1]. `shape` is that of the whole stack, as for a tensor.
    """

    def __init__(self, files: Sequence[Path], transform, size: tuple[int, int], channels: int = 3) -> None:
        self.files, self.transform, self.size, self.channels = list(files), transform, size, channels

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), self.channels, *self.size))

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> torch.Tensor:
        from PIL import Image
        with Image.open(path) as img:
            return self.transform(img.convert("RGB"))

    def __getitem__(self, index: Union[slice, int, torch.Tensor, Sequence[int]]):
        if isinstance(index, slice):
            return LazyImages(self.files[index], self.transform, self.size, self.channels)
        if isinstance(index, int):
            return self._load(self.files[index])
        positions = index.flatten().tolist() if isinstance(index, torch.Tensor) else list(index)
        if not positions:
            return torch.zeros(0, *self.shape[1:])
        return torch.stack([self._load(self.files[int(i)]) for i in positions])


@dataclass
class ImageDataset:
    """A split: images N x C x H x W float in [0, 1] (a tensor, or LazyImages), labels N, sample ids N."""

    name: str
    split: str
    images: Union[torch.Tensor, LazyImages]
    labels: torch.Tensor
    sample_ids: torch.Tensor
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, n: Optional[int]) -> "ImageDataset":
        """The first `n` samples in the split's fixed order (all when n is None)."""
        if n is None:
            return self
        return ImageDataset(self.name, self.split, self.images[:n], self.labels[:n], self.sample_ids[:n],
                            self.classes, self.source)


def cache_dir() -> Path:
    """`$MIMBENCH_HOME`, default ~/.cache/mimbench."""
    return Path(os.environ.get("MIMBENCH_HOME", Path.home() / ".cache" / "mimbench"))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: unreadable ({str(exc).splitlines()[0][:80] or type(exc).__name__}); "
                           f"replace the file") from None
    if len(data) < 8:
        raise DatasetError(f"{path}: not an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: truncated IDX file")
    return arr.reshape(dims)


def _fashion_mnist_files(split: str, data_dir: Optional[Path]) -> tuple[Path, Path, str]:
    prefix = "train" if split == "train" else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    if data_dir is not None:   # a folder the user named: use it or say why not, never fall back to another copy
        if not Path(data_dir).is_dir():
            raise DatasetError(f"--data-dir {data_dir}: no such folder")
        candidates = [Path(data_dir), Path(data_dir) / "FashionMNIST" / "raw"]
        for d in candidates:
            for suffix in (".gz", ""):
                img, lab = d / (names[0] + suffix), d / (names[1] + suffix)
                if img.exists() and lab.exists():
                    return img, lab, str(d)
        raise DatasetError(f"--data-dir {data_dir}: no Fashion-MNIST {split} files ({names[0]}[.gz] and "
                           f"{names[1]}[.gz]) in it or in its FashionMNIST/raw")
    candidates = [DEBIAN_FASHION_MNIST, cache_dir() / "data" / "FashionMNIST" / "raw"]
    for d in candidates:
        for suffix in (".gz", ""):
            img, lab = Path(d) / (names[0] + suffix), Path(d) / (names[1] + suffix)
            if img.exists() and lab.exists():
                return img, lab, str(d)
    root = Path(data_dir) if data_dir is not None else cache_dir() / "data"
    try:
        from torchvision.datasets import FashionMNIST
        FashionMNIST(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # offline, or the host refused
        raise DatasetError(
            "Fashion-MNIST not found: install Debian's package (apt-get install -y dataset-fashion-mnist), "
            f"or put the IDX files in {root / 'FashionMNIST' / 'raw'} (download failed: {exc.__class__.__name__})"
        ) from None
    raw = root / "FashionMNIST" / "raw"
    return raw / names[0], raw / names[1], str(raw)


def load_fashion_mnist(split: str = "test", data_dir: Optional[str] = None) -> ImageDataset:
    img_path, lab_path, source = _fashion_mnist_files(split, Path(data_dir) if data_dir else None)
    raw_images, raw_labels = _read_idx(img_path), _read_idx(lab_path)
    if raw_images.ndim != 3 or raw_labels.ndim != 1:
        swapped = raw_images.ndim == 1 and raw_labels.ndim == 3
        raise DatasetError(f"Fashion-MNIST {split}: {img_path} holds an array of shape {raw_images.shape} and "
                           f"{lab_path} one of shape {raw_labels.shape}; expected N x 28 x 28 images and N labels"
                           + (" (the two files look swapped)" if swapped else ""))
    images = torch.from_numpy(raw_images.copy()).unsqueeze(1).to(torch.float32).div_(255.0)
    labels = torch.from_numpy(raw_labels.astype(np.int64))
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    bad = int(((labels < 0) | (labels >= len(FASHION_MNIST_CLASSES))).sum())
    if bad:
        raise DatasetError(f"Fashion-MNIST {split}: {bad} labels of {lab_path} outside 0-{len(FASHION_MNIST_CLASSES) - 1}")
    return ImageDataset("fashion_mnist", split, images, labels, torch.arange(len(labels)), FASHION_MNIST_CLASSES,
                        source)


def load_cifar10(split: str = "test", data_dir: Optional[str] = None) -> ImageDataset:
    from torchvision.datasets import CIFAR10
    root = Path(data_dir) if data_dir else cache_dir() / "data"
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=False)
    except RuntimeError:
        try:
            ds = CIFAR10(str(root), train=(split == "train"), download=True)
        except Exception as exc:
            raise DatasetError(f"CIFAR-10 not found in {root} and the download failed "
                               f"({exc.__class__.__name__}); pass --data-dir with cifar-10-batches-py") from None
    images = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    return ImageDataset("cifar10", split, images, labels, torch.arange(len(labels)), CIFAR10_CLASSES, str(root))


def eval_transform(preprocessing: Optional[dict[str, Any]] = None):
    """A card's preprocessing (resize, crop, interpolation) as timm's eval transform, to [0, 1] tensors.

    `resize` is the shorter side (then a centre crop, as the authors' eval code) or [height, width] (a squash,
    as Hugging Face processors do); mean/std are not applied here: the models normalise inside.
    """
    from timm.data.transforms_factory import transforms_imagenet_eval
    p = dict(DEFAULT_IMAGENET_PREPROCESSING, **(preprocessing or {}))
    crop, resize = int(p["crop"]), p["resize"]
    squash = isinstance(resize, (list, tuple))
    edge = int(resize[0]) if squash else int(resize)
    if squash and int(resize[0]) != int(resize[1]):
        raise DatasetError(f"preprocessing resize {list(resize)}: only square resizes are supported")
    # timm resizes to floor(crop / crop_pct); the half pixel makes that exactly `edge`
    return transforms_imagenet_eval(img_size=crop, crop_pct=crop / (edge + 0.5), crop_mode="squash" if squash else
                                    "center", interpolation=p["interpolation"], mean=(0.0, 0.0, 0.0),
                                    std=(1.0, 1.0, 1.0))


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def imagenet_subset(root: Path, per_class: int = IMAGENET_PER_CLASS) -> tuple[list[Path], list[int], list[str]]:
    """The fixed class-balanced subset of a class-folder validation set: (files, labels, class names).

    Classes are the sub-folders in sorted order (torchvision's ImageFolder order, which for the 1000 WordNet ids
    is the standard ImageNet-1k class index). Of each class the first `per_class` images by file name are taken,
    ordered round-robin over the classes: sample id = rank * num_classes + class index. So every prefix of
    num_classes ids has one image of each class, and `--n-examples` stays class-balanced.
    """
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DatasetError(f"{root}: no class folders (expected e.g. {root}/n01440764/ILSVRC2012_val_00000293.JPEG)")
    per = []
    for name in classes:
        files = _image_files(root / name)
        if len(files) < per_class:
            raise DatasetError(f"{root / name}: {len(files)} images, the evaluation subset takes {per_class} per class")
        per.append(files[:per_class])
    files = [per[c][r] for r in range(per_class) for c in range(len(classes))]
    labels = [c for _ in range(per_class) for c in range(len(classes))]
    return files, labels, classes


def load_imagenet(split: str = "test", data_dir: Optional[str] = None,
                  preprocessing: Optional[dict[str, Any]] = None) -> ImageDataset:
    """The 5000-image subset of an ImageNet-1k validation folder (`--data-dir`), with the card's preprocessing."""
    if split != "test":
        raise DatasetError("imagenet: only the validation set is evaluated (split 'test')")
    if not data_dir:
        raise DatasetError("imagenet: pass --data-dir with the ImageNet-1k validation folder "
                           "(1000 class folders: val/n01440764/*.JPEG, ...)")
    root = Path(data_dir)
    if (root / "val").is_dir():
        root = root / "val"
    if not root.is_dir():
        raise DatasetError(f"imagenet: {root} is not a folder")
    n_classes = sum(1 for d in root.iterdir() if d.is_dir())
    if n_classes != IMAGENET_NUM_CLASSES:
        raise DatasetError(f"imagenet: {root} has {n_classes} class folders, the ImageNet-1k validation set has "
                           f"{IMAGENET_NUM_CLASSES} (one per WordNet id)")
    files, labels, classes = imagenet_subset(root)
    p = dict(DEFAULT_IMAGENET_PREPROCESSING, **(preprocessing or {}))
    images = LazyImages(files, eval_transform(p), (int(p["crop"]), int(p["crop"])))
    return ImageDataset("imagenet", split, images, torch.tensor(labels), torch.arange(len(files)), tuple(classes),
                        str(root))


_LOADERS = {"fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10, "imagenet": load_imagenet}
_TAKES_PREPROCESSING = {"imagenet"}


def register_dataset(name: str, loader) -> None:
    _LOADERS[name] = loader


def list_datasets() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, split: str = "test", data_dir: Optional[str] = None,
                 preprocessing: Optional[dict[str, Any]] = None, **kwargs) -> ImageDataset:
    """Load a split by dataset name; raises DatasetError with a one-line remedy when it is missing.

    `preprocessing` (a model card's) applies to datasets of natural-size images (imagenet); the others are
    used at their native resolution.
    """
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(list_datasets())}")
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split '{split}' (train or test)")
    if name in _TAKES_PREPROCESSING:
        kwargs["preprocessing"] = preprocessing
    return _LOADERS[name](split=split, data_dir=data_dir, **kwargs)
