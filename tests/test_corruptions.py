"""Common corruptions: this project's ImageNet-C corruptions against the `imagecorruptions` package, byte for byte,
where both apply (colour images of 32 px and more, the package's parameters); the small-image (CIFAR-10-C) profile
on Fashion-MNIST's grey 28 x 28 and CIFAR's 32 x 32; corrupted images as pure functions of (seed, sample id)."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.util
import torch
from PIL import Image

from benchmark.corruptions import CORRUPTIONS, SEVERITIES, CorruptionError, parse_corruptions, parse_severities
from benchmark.corruptions.apply import corrupt_batch, sample_state
from benchmark.corruptions.ops import corrupt_array, profile_for

from .corruption_reference import load_reference


@pytest.fixture(scope="module")
def reference():
    return load_reference()


def _colour_images(fmnist, size: tuple[int, int], k: int = 2) -> list[np.ndarray]:
    """Natural-looking colour test images: Fashion-MNIST pictures with a different curve per channel, resized
    (bicubic) to `size` (height, width) and given a soft background gradient, so blurs, edges and colours all act."""
    out = []
    for i in range(k):
        x = fmnist.images[i, 0].numpy()
        rgb = np.stack([x, x ** 0.6, x ** 1.8], axis=-1)
        picture = Image.fromarray(np.uint8(rgb * 255)).resize(size[::-1], Image.BICUBIC)
        arr = np.asarray(picture).astype(np.float64)
        ramp = np.linspace(20, 90, size[1])[np.newaxis, :, np.newaxis] * np.array([0.3, 0.6, 1.0])
        out.append(np.uint8(np.clip(arr + ramp, 0, 255)))
    return out


def _package(corrupt, image: np.ndarray, name: str, severity: int, state) -> np.ndarray:
    """The package's output with numpy's global random state set to `state`. Impulse noise: scikit-image >= 0.19
    draws from its own generator (`rng=`), no longer from numpy's global state, so the package's call is unseeded;
    it gets the generator this project derives from the same state (one draw of the state, as here)."""
    np.random.set_state(state)
    if name != "impulse_noise":
        return corrupt(image, severity, name)
    original = skimage.util.random_noise

    def seeded(img, mode="gaussian", rng=None, clip=True, **kwargs):
        return original(img, mode=mode, rng=np.random.default_rng(int(np.random.randint(0, 2 ** 31 - 1))),
                        clip=clip, **kwargs)
    skimage.util.random_noise = seeded
    try:
        return corrupt(image, severity, name)
    finally:
        skimage.util.random_noise = original


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_equal_to_imagecorruptions_where_both_apply(name, reference, fmnist_test):
    """Colour images of 32 x 32, 48 x 64 (not square) and 224 x 224 (ImageNet's crop), every severity at the two
    small sizes, 1 and 5 at 224: identical uint8 images, no tolerance (the same operations of the same libraries on
    the same random numbers)."""
    corrupt, _ = reference
    cases = [(img, s) for size in ((32, 32), (48, 64)) for img in _colour_images(fmnist_test, size) for s in SEVERITIES]
    cases += [(img, s) for img in _colour_images(fmnist_test, (224, 224), k=1) for s in (1, 5)]
    for i, (image, severity) in enumerate(cases):
        ours = corrupt_array(image, name, severity, sample_state(0, i, name), profile="imagenet")
        theirs = _package(corrupt, image, name, severity, sample_state(0, i, name).get_state())
        assert ours.shape == theirs.shape == image.shape and ours.dtype == np.uint8
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.max() == 0, f"{name} severity {severity} on {image.shape}: {int((diff > 0).sum())} pixels differ"
        if name not in ("jpeg_compression", "pixelate") or severity == 5:
            assert (ours != image).any(), f"{name} severity {severity} left the image unchanged"


def test_the_profile_follows_the_image_size():
    assert profile_for(28, 28) == "small" and profile_for(32, 32) == "small"
    assert profile_for(64, 64) == "imagenet" and profile_for(224, 224) == "imagenet"


@pytest.mark.parametrize("channels", [1, 3])
def test_small_images_every_corruption_and_severity(channels, fmnist_test):
    """Fashion-MNIST's grey 28 x 28 and a colour 32 x 32 (CIFAR-10-C's parameters): every corruption runs at every
    severity, keeps the shape and [0, 1], changes the image, and (except CIFAR-10-C's elastic transform, whose
    severities trade a random affine for a smooth displacement, non-monotone in the reference too) changes it more at
    severity 5 than at severity 1."""
    x = fmnist_test.images[:8]
    if channels == 3:
        x = torch.nn.functional.interpolate(torch.cat([x, x ** 0.7, x ** 1.5], 1), size=32, mode="bilinear",
                                            align_corners=False).clamp(0, 1)
    ids = fmnist_test.sample_ids[:8]
    for name in CORRUPTIONS:
        change = {}
        for s in SEVERITIES:
            out = corrupt_batch(x, name, s, ids)
            assert out.shape == x.shape and out.dtype == x.dtype and 0 <= float(out.min()) <= float(out.max()) <= 1
            change[s] = float((out - x).abs().mean())
        assert change[1] > 0, name
        if name != "elastic_transform":
            assert change[5] > change[1], (name, change)


def test_a_corrupted_image_is_a_pure_function_of_seed_and_sample_id(fmnist_test):
    x, ids = fmnist_test.images[:6], fmnist_test.sample_ids[:6]
    for name in ("gaussian_noise", "glass_blur", "frost", "fog", "elastic_transform", "snow"):
        whole = corrupt_batch(x, name, 3, ids, seed=0)
        parts = torch.cat([corrupt_batch(x[4:], name, 3, ids[4:], seed=0), corrupt_batch(x[:4], name, 3, ids[:4])])
        assert torch.equal(whole, torch.cat([parts[2:], parts[:2]])), name   # batch composition does not matter
        assert torch.equal(whole, corrupt_batch(x, name, 3, ids, seed=0)), name
        assert not torch.equal(whole, corrupt_batch(x, name, 3, ids, seed=1)), name   # the seed does
        shifted = corrupt_batch(x[:1], name, 3, ids[1:2], seed=0)
        assert not torch.equal(shifted, whole[:1]), name   # and so does the sample id


def test_unknown_names_and_severities_are_refused():
    with pytest.raises(CorruptionError, match="unknown corruption 'fogg'"):
        parse_corruptions("fog,fogg")
    for bad in ("0", "6", "2.5", "x", "1,,2"):
        with pytest.raises(CorruptionError):
            parse_severities(bad)
    assert parse_corruptions("snow,fog") == ("snow", "fog") and parse_severities("5,1") == (1, 5)
    with pytest.raises(CorruptionError):
        corrupt_array(np.zeros((28, 28), np.uint8), "fog", 6, sample_state(0, 0, "fog"))
