"""Common corruptions (ImageNet-C's 15 at 5 severities), the third threat model of RobustBench.

`names` (import-light: the suites and the command line use it), `ops` (one uint8 image; the `imagecorruptions`
package's parameters and algorithms for images larger than 32 px, CIFAR-10-C's for smaller ones) and `apply`
(a batch, seeded per sample id). Import `benchmark.corruptions.apply.corrupt_batch` to corrupt images.
"""
from __future__ import annotations

from .names import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptionError,
    check_corruption,
    check_severity,
    parse_corruptions,
    parse_severities,
)

__all__ = ["CORRUPTIONS", "SEVERITIES", "CorruptionError", "check_corruption", "check_severity",
           "parse_corruptions", "parse_severities"]
