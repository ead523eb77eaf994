"""What the trainer (`zoo.train`, an application like the CLI) uses of the benchmark, and nothing else.

The inner maximisation of the MIM-side defenses runs the benchmark's own reconstruction attacks, MIMIR's penalty
is the benchmark's HSIC, and a trained model's card records the clean quality the benchmark measures. This is
the one module of `benchmark` that `zoo` may import (an import-linter contract says so).
"""
from __future__ import annotations

from .attacks.hsic import normalized_hsic
from .attacks.reconstruction import MIMFGSM, MIMPGD
from .runner.quality import evaluate_quality

__all__ = ["MIMFGSM", "MIMPGD", "evaluate_quality", "normalized_hsic"]
