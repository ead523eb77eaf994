"""The `imagecorruptions` package (1.1.2) as a reference in this environment, without touching the environment.

The package imports `pkg_resources` (gone from setuptools >= 81), calls `np.float_` (gone from numpy 2) and passes
`multichannel=True` to scikit-image's Gaussian (gone from scikit-image 0.21, now `channel_axis=-1`). The loader
gives its module exactly those three names back, inside that module only: a `pkg_resources` with the one function
it uses while it is imported, numpy with `float_ = float64`, and a `gaussian` that maps `multichannel`. Nothing
else of the package changes, so what it computes is what it computed with the libraries it was written for.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import skimage.filters


class _NumpyWithFloat_:
    """numpy, plus the `float_` alias numpy 2 removed (the package's plasma fractal uses it)."""

    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


def _gaussian(image, sigma=1, output=None, mode="nearest", cval=0, multichannel=None, preserve_range=False,
              truncate=4.0):
    return skimage.filters.gaussian(image, sigma=sigma, mode=mode, cval=cval, preserve_range=preserve_range,
                                    truncate=truncate, channel_axis=-1 if multichannel else None, out=output)


def _pkg_resources() -> types.ModuleType:
    module = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        spec = importlib.util.find_spec(package.rsplit(".", 1)[0] if package.endswith(".corruptions") else package)
        return str(Path(list(spec.submodule_search_locations)[0]) / resource)
    module.resource_filename = resource_filename
    return module


def load_reference():
    """The package's `corrupt` and its module of corruptions (skip the test when the package is not installed)."""
    if importlib.util.find_spec("imagecorruptions") is None:
        pytest.fail("imagecorruptions is a dependency of mimbench (pip install imagecorruptions)")
    with pytest.MonkeyPatch.context() as mp:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            mp.setitem(sys.modules, "pkg_resources", _pkg_resources())
        package = importlib.import_module("imagecorruptions")
    ref = sys.modules["imagecorruptions.corruptions"]
    ref.np = _NumpyWithFloat_()
    ref.gaussian = _gaussian
    return package.corrupt, ref
