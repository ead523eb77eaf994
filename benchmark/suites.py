"""The fixed attack matrices: attack x norm x eps x target, per dataset, the same for every model.

A suite is a list of cells; a cell is one attack at one budget on one target. Step counts and step sizes are
part of the suite, so two runs of a suite are the same experiment.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Callable

TARGETS = ("reconstruction", "downstream")

# Linf budgets per dataset ([0, 1] pixel units).
LINF_EPS: dict[str, tuple[float, ...]] = {
    "fashion_mnist": (0.05, 0.1, 0.2),
    "cifar10": (2 / 255, 4 / 255, 8 / 255),
    "imagenet": (1 / 255, 2 / 255, 4 / 255),
}


@dataclass(frozen=True)
class Cell:
    """One attack at one budget on one target."""

    target: str                 # 'reconstruction' | 'downstream'
    attack: str                 # row label in the tables, e.g. 'pgd', 'pgd_agnostic'
    norm: str                   # 'Linf' | 'L2'
    eps: float
    method: str = ""            # which implementation runs it (defaults to `attack`)
    steps: int = 0
    alpha: float = 0.0          # absolute step size
    random_start: bool = False
    threat: str = "aware"       # reconstruction: 'aware' | 'agnostic'
    scope: str = "all"          # reconstruction: 'all' | 'visible' | 'masked'
    eot_samples: int = 1
    params: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def impl(self) -> str:
        return self.method or self.attack

    def key(self) -> str:
        """A stable, human-readable identifier of everything that defines the cell."""
        parts = [self.target, self.attack, self.impl, self.norm, repr(float(self.eps)), str(self.steps),
                 repr(float(self.alpha)), str(self.random_start), self.threat, self.scope, str(self.eot_samples)]
        parts += [f"{k}={v}" for k, v in self.params]
        return "|".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = dict(self.params)
        return d


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    build: Callable[[str], list[Cell]]

    def cells(self, dataset: str, target: str = "both") -> list[Cell]:
        if dataset not in LINF_EPS:
            raise KeyError(f"suite '{self.name}' has no matrix for dataset '{dataset}' "
                           f"(known: {', '.join(sorted(LINF_EPS))})")
        cells = self.build(dataset)
        return [c for c in cells if target == "both" or c.target == target]


def format_eps(eps: float) -> str:
    """0.0313725 -> '8/255' where eps is a whole number of 255ths, else a short decimal."""
    if eps == 0:
        return "0"
    if abs(round(eps, 4) - eps) < 1e-12:  # a short decimal such as 0.05 stays as it is
        return f"{eps:g}"
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) > 0:
        return f"{int(round(k))}/255"
    return f"{eps:.4g}"


def _pgd(dataset: str) -> list[Cell]:
    cells = []
    for target in TARGETS:
        for eps in LINF_EPS[dataset]:
            cells.append(Cell(target, "pgd", "Linf", eps, steps=20, alpha=2.5 * eps / 20, random_start=True))
    return cells


_SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    _SUITES[suite.name] = suite
    return suite


register_suite(Suite("pgd", "Linf PGD-20, step 2.5*eps/20, random start; reconstruction mask-aware, all pixels",
                     _pgd))

DEFAULT_SUITE = "pgd"


def list_suites() -> list[str]:
    return sorted(_SUITES)


def get_suite(name: str) -> Suite:
    if name not in _SUITES:
        raise KeyError(f"unknown suite '{name}'; known: {', '.join(list_suites())}")
    return _SUITES[name]


def describe(suite: Suite, dataset: str) -> str:
    """The suite's matrix for a dataset, one line per cell, for --list-suites."""
    lines = [f"{suite.name}: {suite.description}", f"  dataset {dataset}:"]
    for c in suite.cells(dataset):
        extra = ""
        if c.target == "reconstruction":
            extra = f", {c.threat}" + (f" (EoT {c.eot_samples})" if c.threat == "agnostic" else "") + f", {c.scope}"
        params = "".join(f", {k}={v}" for k, v in c.params)
        step = f"{c.steps} steps of {format_eps(c.alpha) if c.alpha else '-'}" if c.steps else "parameter-free"
        lines.append(f"    {c.target:<14} {c.attack:<18} {c.norm:<4} eps {format_eps(c.eps):<7} {step}"
                     f"{', random start' if c.random_start else ''}{extra}{params}")
    return "\n".join(lines)
