"""Evaluation and training datasets as tensors in [0, 1], with stable sample ids (id = index in the split).

Fashion-MNIST is read from Debian's `dataset-fashion-mnist` package when present, else downloaded through
torchvision into the cache. The order of a split never changes, so `--n-examples N` means the first N ids.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DatasetError(RuntimeError):
    """A dataset that is not on this machine and cannot be fetched; the message says how to get it."""


@dataclass
class ImageDataset:
    """A split held in memory: images N x C x H x W float in [0, 1], labels N, sample ids N."""

    name: str
    split: str
    images: torch.Tensor
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
    with opener(path, "rb") as f:
        data = f.read()
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
    candidates = [d for d in (data_dir, DEBIAN_FASHION_MNIST, cache_dir() / "data" / "FashionMNIST" / "raw")
                  if d is not None]
    if data_dir is not None:
        candidates.insert(1, Path(data_dir) / "FashionMNIST" / "raw")
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
    images = torch.from_numpy(_read_idx(img_path).copy()).unsqueeze(1).to(torch.float32).div_(255.0)
    labels = torch.from_numpy(_read_idx(lab_path).astype(np.int64))
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
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


_LOADERS = {"fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10}


def register_dataset(name: str, loader) -> None:
    _LOADERS[name] = loader


def list_datasets() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, split: str = "test", data_dir: Optional[str] = None, **kwargs) -> ImageDataset:
    """Load a split by dataset name; raises DatasetError with a one-line remedy when it is missing."""
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(list_datasets())}")
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split '{split}' (train or test)")
    return _LOADERS[name](split=split, data_dir=data_dir, **kwargs)
