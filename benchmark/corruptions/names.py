"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) and their 5 severities, by name.

This module is import-light on purpose (no OpenCV, no scikit-image): the suites and the command line read the
names from here; the image operations live in `ops` and are imported only when images are corrupted.
"""
from __future__ import annotations

# ImageNet-C's order: noise, blur, weather, digital (imagecorruptions' `get_corruption_names('common')`).
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

__all__ = ["CORRUPTIONS", "SEVERITIES", "CorruptionError", "check_corruption", "check_severity",
           "parse_corruptions", "parse_severities"]


class CorruptionError(ValueError):
    """An unknown corruption name or a severity outside 1-5; the message is one line naming the known ones."""


def check_corruption(name: str) -> str:
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption '{name}' (known: {', '.join(CORRUPTIONS)})")
    return name


def check_severity(severity) -> int:
    try:
        value = int(severity)
    except (TypeError, ValueError):
        raise CorruptionError(f"severity '{severity}' is not a whole number from 1 to 5") from None
    if str(severity).strip() not in (str(value), f"{value}.0") or value not in SEVERITIES:
        raise CorruptionError(f"severity '{severity}' is outside 1-5 (ImageNet-C's five levels)")
    return value


def _items(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise CorruptionError(f"'{text}': expected a comma-separated list without empty items")
    return items


def parse_corruptions(text: str) -> tuple[str, ...]:
    """'fog,snow' -> ('fog', 'snow') in the suite's order; 'all' -> every corruption."""
    if text.strip() == "all":
        return CORRUPTIONS
    chosen = {check_corruption(t) for t in _items(text)}
    return tuple(c for c in CORRUPTIONS if c in chosen)


def parse_severities(text: str) -> tuple[int, ...]:
    """'1,3,5' -> (1, 3, 5); 'all' -> 1-5."""
    if text.strip() == "all":
        return SEVERITIES
    return tuple(sorted({check_severity(t) for t in _items(text)}))
