"""Shared fixtures: the official reference files and Fashion-MNIST."""
from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import OFFICIAL


@pytest.fixture(scope="session")
def official_dir() -> Path:
    if not OFFICIAL.is_dir():
        pytest.fail(f"official fixtures not found at {OFFICIAL}")
    return OFFICIAL


@pytest.fixture(scope="session")
def fmnist_test():
    from zoo.data import load_dataset
    return load_dataset("fashion_mnist", "test")
