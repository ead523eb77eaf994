"""The 15 ImageNet-C corruptions on one uint8 image, for any size, grey (H x W) or colour (H x W x 3).

Two parameter profiles, chosen by the image size (`profile_for`):
- `imagenet` (images larger than 32 px): the `imagecorruptions` package (Michaelis et al., 2019), which
  generalised ImageNet-C's code to any image size: its parameters and its algorithms, step for step, so an image
  corrupted here equals the package's output when numpy's random state is the same (tests/test_corruptions.py
  checks it on colour images of 32 px and larger). Only the random draws differ in where they come from: each
  function takes a `numpy.random.RandomState` (a pure function of seed and sample id) instead of numpy's global
  state, and draws from it in the package's order; impulse noise, drawn by scikit-image's own generator since
  scikit-image 0.19, gets a generator seeded from that state.
- `small` (32 px and smaller: CIFAR-10's 32 x 32 and Fashion-MNIST's 28 x 28): the parameters and algorithms of
  CIFAR-10-C (hendrycks/robustness, `make_cifar_c.py`), the corruptions RobustBench evaluates CIFAR-10 on, with
  the image size taken from the image instead of a fixed 32. Where CIFAR-10-C calls ImageMagick (motion blur, the
  motion blur of snow), the package's own motion-blur kernel runs with CIFAR-10-C's radius and sigma.

Grey images are corrupted as a grey image, the way the reference code's single-channel branches do: noise drawn
per pixel, brightness added to the value, frost converted to grey (ITU-R 601 weights of its RGB), JPEG through an
RGB round trip as the package does for grey images. Glass blur moves pixels the way the reference actually does
on colour images (its swap of two numpy rows assigns one to the other: a copy, not a swap), on grey images too.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Union

import cv2
import numpy as np
import skimage.color
import skimage.filters
import skimage.util
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scipy_zoom

from .names import CORRUPTIONS, check_corruption, check_severity

SMALL_MAX_SIDE = 32       # images up to this side use CIFAR-10-C's parameters
PROFILES = ("imagenet", "small")
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")

__all__ = ["PROFILES", "SMALL_MAX_SIDE", "corrupt_array", "frost_dir", "profile_for"]

Array = np.ndarray
Result = Union[np.ndarray, Image.Image]


def profile_for(height: int, width: int) -> str:
    """`small` (CIFAR-10-C's parameters) for images of at most 32 px a side, else `imagenet` (the package's)."""
    return "small" if max(height, width) <= SMALL_MAX_SIDE else "imagenet"


# -- parameters per corruption, profile and severity (ImageNet: imagecorruptions 1.1.2; small: make_cifar_c.py) --
_PARAMS: dict[str, dict[str, tuple]] = {
    "gaussian_noise": {"imagenet": (.08, .12, .18, .26, .38), "small": (.04, .06, .08, .09, .10)},
    "shot_noise": {"imagenet": (60, 25, 12, 5, 3), "small": (500, 250, 100, 75, 50)},
    "impulse_noise": {"imagenet": (.03, .06, .09, .17, .27), "small": (.01, .02, .03, .05, .07)},
    "defocus_blur": {"imagenet": ((3, .1), (4, .5), (6, .5), (8, .5), (10, .5)),
                     "small": ((.3, .4), (.4, .5), (.5, .6), (1, .2), (1.5, .1))},
    "glass_blur": {"imagenet": ((.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),   # sigma, delta, iters
                   "small": ((.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2))},
    "motion_blur": {"imagenet": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
                    "small": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))},
    "zoom_blur": {"imagenet": ((1, 1.11, .01), (1, 1.16, .01), (1, 1.21, .02), (1, 1.26, .02), (1, 1.31, .03)),
                  "small": ((1, 1.06, .01), (1, 1.11, .01), (1, 1.16, .01), (1, 1.21, .01), (1, 1.26, .01))},
    "snow": {"imagenet": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                          (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                          (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
             "small": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                       (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                       (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))},
    "frost": {"imagenet": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
              "small": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))},
    "fog": {"imagenet": ((1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)),
            "small": ((.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))},
    "brightness": {"imagenet": (.1, .2, .3, .4, .5), "small": (.05, .1, .15, .2, .3)},
    "contrast": {"imagenet": (0.4, .3, .2, .1, .05), "small": (.75, .5, .4, .3, 0.15)},
    "elastic_transform": {"imagenet": (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12),  # alpha
                          "small": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                                    (0.1, 0.03, 0.03))},   # fractions of the image side: alpha, sigma, affine
    "pixelate": {"imagenet": (0.6, 0.5, 0.4, 0.3, 0.25), "small": (0.95, 0.9, 0.85, 0.75, 0.65)},
    "jpeg_compression": {"imagenet": (25, 18, 15, 10, 7), "small": (80, 65, 58, 50, 40)},
}


# -- helpers ---------------------------------------------------------------------------------------------------

def _is_colour(x: Array) -> bool:
    return x.ndim == 3


def _gaussian(img: Array, sigma, **kwargs) -> Array:
    """scikit-image's Gaussian filter over the spatial axes (the channel axis of a colour image is kept apart)."""
    return skimage.filters.gaussian(img, sigma=sigma, channel_axis=-1 if img.ndim == 3 else None, **kwargs)


def _disk_kernel(radius: float, alias_blur: float) -> Array:
    """A normalised disk of `radius`, anti-aliased by a small Gaussian (ImageNet-C's defocus kernel)."""
    half = 8 if radius <= 8 else radius
    ksize = (3, 3) if radius <= 8 else (5, 5)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def _shift(image: Array, dx: int, dy: int) -> Array:
    """The image moved by (dx, dy) pixels, the uncovered border filled with the nearest row or column."""
    out = image
    if dx:
        out = np.roll(image, shift=dx if dx > 0 else image.shape[1] + dx, axis=1)
        if dx > 0:
            out[:, :dx] = out[:, dx:dx + 1]
        else:
            out[:, dx:] = out[:, dx - 1:dx]
    if dy:
        out = np.roll(out, shift=dy if dy > 0 else image.shape[0] + dy, axis=0)
        if dy > 0:
            out[:dy, :] = out[dy:dy + 1, :]
        else:
            out[dy:, :] = out[dy - 1:dy, :]
    return out


def _motion_blur(x: Array, radius: float, sigma: float, angle: float) -> Array:
    """The package's motion blur: a one-sided Gaussian kernel of 2*radius+1 taps along `angle` (degrees)."""
    width = int(radius * 2 + 1)
    taps = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    taps = taps / np.sum(taps)
    py, px = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    norm = math.hypot(py, px)
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * py) / norm) - 0.5)
        dx = -math.ceil(((i * px) / norm) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break  # the motion left the image
        blurred = blurred + taps[i] * _shift(x, dx, dy)
    return blurred


def _zoom_centre(img: Array, factor: float, profile: str) -> Array:
    """Zoom into the centre by `factor` (bilinear). `imagenet` keeps the zoomed crop whole (the caller trims its
    top-left H x W, as the package does); `small` trims it to the input size around the centre (CIFAR-10-C)."""
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / float(factor))), int(np.ceil(w / float(factor)))
    top, left = (h - ch) // 2, (w - cw) // 2
    zoom = (factor, factor) + (1,) * (img.ndim - 2)
    out = scipy_zoom(img[top:top + ch, left:left + cw], zoom, order=1)
    if profile == "imagenet":
        return out
    th, tw = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[th:th + h, tw:tw + w]


def _plasma_fractal(rs: np.random.RandomState, mapsize: int, wibbledecay: float) -> Array:
    """A square height map in [0, 1] by the diamond-square algorithm (side `mapsize`, a power of two)."""
    assert mapsize & (mapsize - 1) == 0
    grid = np.empty((mapsize, mapsize), dtype=np.float64)
    grid[0, 0] = 0
    step, wibble = mapsize, 100.0

    def jittered(total: Array) -> Array:
        return total / 4 + wibble * rs.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        corners = grid[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        grid[step // 2:mapsize:step, step // 2:mapsize:step] = jittered(squares)
        centres = grid[step // 2:mapsize:step, step // 2:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        rows = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        grid[0:mapsize:step, step // 2:mapsize:step] = jittered(rows)
        cols = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        grid[step // 2:mapsize:step, 0:mapsize:step] = jittered(cols)
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min()
    return grid / grid.max()


def _next_power_of_2(n: int) -> int:
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


def _grey(rgb: Array) -> Array:
    return np.dot(rgb[..., :3], [0.2989, 0.5870, 0.1140])


def frost_dir() -> Path:
    """The frost pictures shipped with the `imagecorruptions` package (found without importing it: its import
    needs setuptools' pkg_resources, gone from setuptools >= 81)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the frost corruption needs the frost images of the 'imagecorruptions' package "
                          "(pip install imagecorruptions)")
    return Path(list(spec.submodule_search_locations)[0]) / "frost"


@functools.lru_cache(maxsize=None)
def _frost_picture(index: int) -> Array:
    path = frost_dir() / FROST_FILES[index]
    picture = cv2.imread(str(path))
    if picture is None:
        raise FileNotFoundError(f"cannot read the frost image {path}")
    picture.setflags(write=False)
    return picture


# -- the corruptions: (uint8 image, this severity's parameters, random state, profile) -> float image or PIL ------

def _gaussian_noise(x: Array, c, rs, profile) -> Result:
    x = x / 255.
    return np.clip(x + rs.normal(size=x.shape, scale=c), 0, 1) * 255


def _shot_noise(x: Array, c, rs, profile) -> Result:
    x = x / 255.
    return np.clip(rs.poisson(x * c) / float(c), 0, 1) * 255


def _impulse_noise(x: Array, c, rs, profile) -> Result:
    rng = np.random.default_rng(int(rs.randint(0, 2 ** 31 - 1)))
    return np.clip(skimage.util.random_noise(x / 255., mode="s&p", amount=c, rng=rng), 0, 1) * 255


def _defocus_blur(x: Array, c, rs, profile) -> Result:
    x = x / 255.
    kernel = _disk_kernel(radius=c[0], alias_blur=c[1])
    if _is_colour(x):
        out = np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(x.shape[2])], axis=2)
    else:
        out = cv2.filter2D(x, -1, kernel)
    return np.clip(out, 0, 1) * 255


def _glass_blur(x: Array, c, rs, profile) -> Result:
    sigma, delta, iterations = c
    x = np.uint8(_gaussian(x / 255., sigma) * 255)
    h, w = x.shape[:2]
    for _ in range(iterations):
        rows = range(h - delta, delta, -1)
        cols = range(w - delta, delta, -1)
        moves = rs.randint(-delta, delta, size=(len(rows) * len(cols), 2))  # the reference's draws, in its order
        k = 0
        for i in rows:
            for j in cols:
                dx, dy = moves[k]
                k += 1
                x[i, j] = x[i + dy, j + dx]   # the reference's "swap" of two numpy rows: a copy
    return np.clip(_gaussian(x / 255., sigma), 0, 1) * 255


def _motion_blur_op(x: Array, c, rs, profile) -> Result:
    angle = rs.uniform(-45, 45)
    return np.clip(_motion_blur(np.array(x), radius=c[0], sigma=c[1], angle=angle), 0, 255)


def _zoom_blur(x: Array, c, rs, profile) -> Result:
    factors = np.arange(*c)
    x = (x / 255.).astype(np.float32)
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for factor in factors:
        layer = _zoom_centre(x, factor, profile)[:h, :w]
        out[:layer.shape[0], :layer.shape[1]] += layer
    x = (x + out) / (len(factors) + 1)
    return np.clip(x, 0, 1) * 255


def _snow(x: Array, c, rs, profile) -> Result:
    x = np.array(x, dtype=np.float32) / 255.
    h, w = x.shape[:2]
    layer = rs.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _zoom_centre(layer[..., np.newaxis], c[2], profile)
    layer[layer < c[3]] = 0
    layer = np.clip(layer.squeeze(), 0, 1)
    layer = _motion_blur(layer, radius=c[4], sigma=c[5], angle=rs.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.)[:h, :w]
    if _is_colour(x):
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, w, 1)
        layer = layer[..., np.newaxis]
    else:
        grey = x
    x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def _frost(x: Array, c, rs, profile) -> Result:
    index = rs.randint(5)   # the reference draws from the first five of its six pictures
    picture = _frost_picture(int(index))
    h, w = x.shape[:2]
    if profile == "small":
        picture = cv2.resize(picture, (0, 0), fx=0.2, fy=0.2)
    else:   # scale the picture to cover the image (times 1.1), as the package does
        fh, fw = picture.shape[:2]
        scale = 1.0
        if fh < h and fw >= w:
            scale = h / fh
        elif fh >= h and fw < w:
            scale = w / fw
        elif fh < h and fw < w:
            scale = np.maximum(h / fh, w / fw)
        scale *= 1.1
        size = (int(np.ceil(fw * scale)), int(np.ceil(fh * scale)))
        picture = cv2.resize(picture, dsize=size, interpolation=cv2.INTER_CUBIC)
    top, left = rs.randint(0, picture.shape[0] - h), rs.randint(0, picture.shape[1] - w)
    crop = picture[top:top + h, left:left + w][..., [2, 1, 0]]   # BGR -> RGB
    if not _is_colour(x):
        crop = _grey(crop)
    return np.clip(c[0] * np.array(x) + c[1] * crop, 0, 255)


def _fog(x: Array, c, rs, profile) -> Result:
    h, w = x.shape[:2]
    mapsize = _next_power_of_2(int(max(x.shape)))
    x = x / 255.
    peak = x.max()
    haze = _plasma_fractal(rs, mapsize, c[1])[:h, :w]
    x += c[0] * (haze[..., np.newaxis] if _is_colour(x) else haze)
    return np.clip(x * peak / (peak + c[0]), 0, 1) * 255


def _brightness(x: Array, c, rs, profile) -> Result:
    x = x / 255.
    if _is_colour(x):
        hsv = skimage.color.rgb2hsv(x)
        hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
        x = skimage.color.hsv2rgb(hsv)
    else:
        x = np.clip(x + c, 0, 1)
    return np.clip(x, 0, 1) * 255


def _contrast(x: Array, c, rs, profile) -> Result:
    x = x / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def _elastic_transform(x: Array, c, rs, profile) -> Result:
    image = np.array(x, dtype=np.float32) / 255.
    shape = image.shape
    size = shape[:2]
    if profile == "small":   # CIFAR-10-C: a random affine, then a smooth displacement field
        side = min(size)
        alpha, sigma, spread = (side * v for v in c)
        centre = np.float32(size) // 2
        half = min(size) // 3
        src = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
        dst = src + rs.uniform(-spread, spread, size=src.shape).astype(np.float32)
        image = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), size[::-1],
                               borderMode=cv2.BORDER_REFLECT_101)
        dx = (_gaussian(rs.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
        dy = (_gaussian(rs.uniform(-1, 1, size=size), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    else:                    # the package: a displacement field scaled to the image
        sigma = np.array(size) * 0.01
        max_d = shape[0] * 0.005
        dx = (_gaussian(rs.uniform(-max_d, max_d, size=size), sigma, mode="reflect", truncate=3) * c
              ).astype(np.float32)
        dy = (_gaussian(rs.uniform(-max_d, max_d, size=size), sigma, mode="reflect", truncate=3) * c
              ).astype(np.float32)
    if image.ndim == 3:
        dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
        xx, yy, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
        indices = np.reshape(yy + dy, (-1, 1)), np.reshape(xx + dx, (-1, 1)), np.reshape(zz, (-1, 1))
    else:
        xx, yy = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]))
        indices = np.reshape(yy + dy, (-1, 1)), np.reshape(xx + dx, (-1, 1))
    warped = map_coordinates(image, indices, order=1, mode="reflect").reshape(shape)
    return np.clip(warped, 0, 1) * 255


def _pixelate(x: Array, c, rs, profile) -> Result:
    picture = Image.fromarray(x)
    h, w = x.shape[:2]
    picture = picture.resize((int(w * c), int(h * c)), Image.BOX)
    return picture.resize((w, h), Image.BOX if profile == "small" else Image.NEAREST)


def _jpeg_compression(x: Array, c, rs, profile) -> Result:
    picture = Image.fromarray(x)
    grey = picture.mode != "RGB"
    if grey:
        picture = picture.convert("RGB")
    buffer = BytesIO()
    picture.save(buffer, "JPEG", quality=c)
    picture = Image.open(buffer)
    return picture.convert("L") if grey else picture


_OPS: dict[str, Callable[[Array, Any, np.random.RandomState, str], Result]] = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur, "glass_blur": _glass_blur, "motion_blur": _motion_blur_op,
    "zoom_blur": _zoom_blur, "snow": _snow, "frost": _frost, "fog": _fog, "brightness": _brightness,
    "contrast": _contrast, "elastic_transform": _elastic_transform, "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
assert tuple(_OPS) == CORRUPTIONS


def corrupt_array(image: Array, name: str, severity: int, rs: np.random.RandomState,
                  profile: str | None = None) -> Array:
    """`image` (uint8, H x W or H x W x 3) under corruption `name` at `severity` (1-5): uint8 of the same shape.

    Random numbers come from `rs` only; `profile` defaults to the one of the image's size (`profile_for`). As in
    the package, the float result is cast to uint8 by truncation.
    """
    check_corruption(name)
    severity = check_severity(severity)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 H x W or H x W x 3 image, got {image.dtype} {image.shape}")
    profile = profile or profile_for(*image.shape[:2])
    if profile not in PROFILES:
        raise ValueError(f"unknown profile '{profile}' ({', '.join(PROFILES)})")
    params = _PARAMS[name][profile][severity - 1]
    out = np.uint8(_OPS[name](image, params, rs, profile))
    if out.shape != image.shape:
        raise RuntimeError(f"{name}: output shape {out.shape} differs from the input's {image.shape}")
    return out
