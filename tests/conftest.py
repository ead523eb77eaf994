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


@pytest.fixture
def one_thread():
    """torch on one thread: on a busy 2-core machine two OpenMP threads can stall each other for seconds."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Runs started by the tests keep their resumable records in a cache of their own, not the user's."""
    import os
    old = os.environ.get("MIMBENCH_HOME")
    os.environ["MIMBENCH_HOME"] = str(tmp_path_factory.mktemp("mimbench_home"))
    yield
    if old is None:
        os.environ.pop("MIMBENCH_HOME", None)
    else:
        os.environ["MIMBENCH_HOME"] = old
