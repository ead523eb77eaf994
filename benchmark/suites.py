"""The fixed attack matrices: attack x norm x eps x target, per dataset, the same for every model.

A suite is a list of cells; a cell is one attack at one budget on one target. Step counts and step sizes are
part of the suite, so two runs of a suite are the same experiment.

Budgets. Each grid is a doubling ladder of three budgets that ends at the budget the field uses for the dataset:
- Linf: fashion_mnist {0.05, 0.1, 0.2}, cifar10 {2, 4, 8}/255 (RobustBench's 8/255), imagenet {1, 2, 4}/255
  (RobustBench's 4/255);
- L2 (PGD-L2, CW, AutoAttack-L2, APGD-L2), chosen the same way: fashion_mnist {0.5, 1, 2} (2.0 is the usual
  MNIST-family L2 budget), cifar10 {0.125, 0.25, 0.5} (RobustBench's 0.5), imagenet {0.75, 1.5, 3} (3.0, the
  ImageNet L2 budget of robust-transfer work, e.g. Salman et al. 2020). Relative to the Linf ladder these are
  about 0.3-0.5 of the Linf ball's RMS perturbation, as RobustBench's CIFAR-10 pair (8/255, 0.5) is.

Reconstruction threat variants are encoded in the attack label: `X` (mask-aware, all pixels), `X_agnostic`
(mask-agnostic, EoT over 8 masks), `X_visible` (visible patches only), `X_masked` (masked patches only: a
control that must change nothing for MAE).

Threat models beyond white-box (a cell's `source` says which model crafts its perturbation):
- `transfer`: perturbations crafted on the pretrained MIM model alone (label-free feature PGD on its encoder, PGD on
  its MIM loss, L4A's lift of its first block's activations) evaluated on the fine-tuned classifier, beside the
  white-box PGD-20 of the same budget; and PGD-20 on the classifier evaluated on the reconstruction;
- `universal`: one perturbation per budget and loss, crafted on training images only, added to every test image;
- `corruptions`: ImageNet-C's 15 corruptions at 5 severities (rows `corruption | severity | s`), ranked by the mean.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Callable, Optional

from zoo.registries import Registry

from .corruptions.names import CORRUPTIONS, SEVERITIES

TARGETS = ("reconstruction", "downstream")

# Linf budgets per dataset ([0, 1] pixel units).
LINF_EPS: dict[str, tuple[float, ...]] = {
    "fashion_mnist": (0.05, 0.1, 0.2),
    "cifar10": (2 / 255, 4 / 255, 8 / 255),
    "imagenet": (1 / 255, 2 / 255, 4 / 255),
}
# L2 budgets per dataset ([0, 1] pixel units), chosen as the Linf ones (see above).
L2_EPS: dict[str, tuple[float, ...]] = {
    "fashion_mnist": (0.5, 1.0, 2.0),
    "cifar10": (0.125, 0.25, 0.5),
    "imagenet": (0.75, 1.5, 3.0),
}
EPS: dict[str, dict[str, tuple[float, ...]]] = {"Linf": LINF_EPS, "L2": L2_EPS}
# The budget a board ranks by, per dataset and norm: the one the field reports (Fashion-MNIST Linf 0.1, as the
# adversarial-training literature on it; CIFAR-10 8/255 and ImageNet 4/255, as RobustBench), L2 likewise.
REFERENCE_EPS: dict[str, dict[str, float]] = {
    "fashion_mnist": {"Linf": 0.1, "L2": 1.0},
    "cifar10": {"Linf": 8 / 255, "L2": 0.5},
    "imagenet": {"Linf": 4 / 255, "L2": 3.0},
}

EOT_SAMPLES = 8                                     # masks averaged by the mask-agnostic attacker
CW_STEPS, CW_PARAMS = 100, (("c", (1.0, 10.0)), ("kappa", 0.0), ("lr", 0.01))  # c: one run per value
APGD_STEPS = 100
HSIC_WEIGHT = 1.0                                   # MI-aware PGD: weight of the normalised HSIC term
SOURCES = ("self", "mim", "classifier", "none")     # which model crafts a cell's perturbation (Cell.source)


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
    # Which model crafts the perturbation: 'self' (the target's own model: white-box), 'mim' (the pretrained MIM
    # model, for a downstream cell: transfer), 'classifier' (the fine-tuned classifier, for a reconstruction cell),
    # 'none' (no model: a corruption, whose `attack` is its name, `norm` 'severity' and `eps` the severity 1-5).
    source: str = "self"

    @property
    def impl(self) -> str:
        return self.method or self.attack

    @property
    def crafted_by(self) -> Optional[str]:
        """The target whose attack registry implements the cell ('reconstruction' for a perturbation crafted on the
        MIM model, 'downstream' for one crafted on the classifier), None for a corruption."""
        if self.source == "self":
            return self.target
        return {"mim": "reconstruction", "classifier": "downstream", "none": None}[self.source]

    @property
    def is_corruption(self) -> bool:
        return self.source == "none"

    def key(self) -> str:
        """A stable, human-readable identifier of everything that defines the cell (the key of a white-box cell,
        source 'self', is the key it had before cells had a source: stored records stay valid)."""
        parts = [self.target, self.attack, self.impl, self.norm, repr(float(self.eps)), str(self.steps),
                 repr(float(self.alpha)), str(self.random_start), self.threat, self.scope, str(self.eot_samples)]
        parts += [f"{k}={v}" for k, v in self.params]
        if self.source != "self":
            parts.append(f"source={self.source}")
        return "|".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = dict(self.params)
        return d


@dataclass(frozen=True)
class Suite:
    """A named matrix of cells. `cascade`: downstream cells of one budget run in order, each on the samples every
    earlier cell of the budget (and every cell of a smaller budget of the norm) left standing, so a cell's row is
    the robust accuracy after it and the cells before it. `max_examples`: the suite runs on the first N sample ids
    of the evaluation set (a fixed subset; RobustBench does the same for ImageNet), None for the whole set."""

    name: str
    description: str
    build: Callable[[str], list[Cell]]
    cascade: bool = False
    max_examples: Optional[int] = None
    # How the board ranks a model. By default the per-sample worst case over every row of a budget. `ranked_attacks`:
    # over these rows only; the suite's other rows (the white-box `reference_attack` of the same budget) are shown
    # beside them, not ranked (a transfer board ranked by the white-box row would rank white-box robustness).
    # `aggregate` 'mean': per sample the mean over every row of a budget and over all rows (corruptions, as
    # RobustBench reports them), ranked by the overall mean.
    ranked_attacks: tuple[str, ...] = ()
    reference_attack: str = ""
    aggregate: str = "worst"
    # A model without a classifier runs the suite's reconstruction side (with a note) instead of stopping.
    reconstruction_fallback: bool = False

    def eval_size(self, dataset_size: int) -> int:
        """How many samples (the first ones) a complete run of this suite evaluates."""
        return dataset_size if self.max_examples is None else min(self.max_examples, dataset_size)

    def cells(self, dataset: str, target: str = "both") -> list[Cell]:
        if dataset not in LINF_EPS:
            raise KeyError(f"suite '{self.name}' has no matrix for dataset '{dataset}' "
                           f"(known: {', '.join(sorted(LINF_EPS))})")
        cells = self.build(dataset)
        return [c for c in cells if target == "both" or c.target == target]


def row_label(attack: str, norm: str, eps: float) -> str:
    """The identifier of a result row and of its per-sample outcomes: 'clean' or 'attack|norm|eps'."""
    return "clean" if attack == "none" else f"{attack}|{norm}|{float(eps)!r}"


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


def _cell(target: str, label: str, norm: str, eps: float, method: str = "", **kwargs) -> Cell:
    return Cell(target, label, norm, eps, method="" if method in ("", label) else method, **kwargs)


def _pgd20(target: str, eps: float, norm: str = "Linf", label: str = "pgd", method: str = "pgd", **kwargs) -> Cell:
    """PGD-20, step 2.5*eps/20 (= eps/8), random start: the benchmark's reference attack."""
    return _cell(target, label, norm, eps, method, steps=20, alpha=2.5 * eps / 20, random_start=True, **kwargs)


def _recon_variants(make: Callable[..., Cell], eps: float, norm: str, variants: tuple[str, ...]) -> list[Cell]:
    """Reconstruction cells of one attack under the given threat variants (aware, agnostic, visible, masked)."""
    cells = []
    for v in variants:
        if v == "aware":
            cells.append(make("reconstruction", eps, norm))
        elif v == "agnostic":
            cells.append(make("reconstruction", eps, norm, suffix="_agnostic", threat="agnostic",
                              eot_samples=EOT_SAMPLES))
        else:
            cells.append(make("reconstruction", eps, norm, suffix=f"_{v}", scope=v))
    return cells


def _fgsm_cell(target, eps, norm="Linf", suffix="", **kw) -> Cell:
    return _cell(target, "fgsm" + suffix, norm, eps, "fgsm", steps=1, alpha=eps, **kw)


def _bim_cell(target, eps, norm="Linf", suffix="", **kw) -> Cell:
    return _cell(target, "bim" + suffix, norm, eps, "bim", steps=10, alpha=2.5 * eps / 10, **kw)


def _pgd_cell(target, eps, norm="Linf", suffix="", **kw) -> Cell:
    return _pgd20(target, eps, norm, label="pgd" + suffix, **kw)


def _fgsm(dataset: str) -> list[Cell]:
    cells = []
    for eps in LINF_EPS[dataset]:
        cells += _recon_variants(_fgsm_cell, eps, "Linf", ("aware", "agnostic"))
    return cells + [_fgsm_cell("downstream", eps) for eps in LINF_EPS[dataset]]


def _bim(dataset: str) -> list[Cell]:
    cells = []
    for eps in LINF_EPS[dataset]:
        cells += _recon_variants(_bim_cell, eps, "Linf", ("aware", "agnostic"))
    return cells + [_bim_cell("downstream", eps) for eps in LINF_EPS[dataset]]


def _pgd(dataset: str) -> list[Cell]:
    cells = []
    for target in TARGETS:
        for eps in LINF_EPS[dataset]:
            cells.append(Cell(target, "pgd", "Linf", eps, steps=20, alpha=2.5 * eps / 20, random_start=True))
    return cells


def _pgd_l2(dataset: str) -> list[Cell]:
    cells = []
    for eps in L2_EPS[dataset]:
        cells += _recon_variants(_pgd_cell, eps, "L2", ("aware", "agnostic"))
    return cells + [_pgd_cell("downstream", eps, "L2") for eps in L2_EPS[dataset]]


def _threat(dataset: str) -> list[Cell]:
    cells = _pgd(dataset)
    for eps in LINF_EPS[dataset]:
        cells += _recon_variants(_pgd_cell, eps, "Linf", ("agnostic", "visible", "masked"))
    return cells


def _cw(dataset: str) -> list[Cell]:
    cells = [_pgd_cell("reconstruction", eps, "L2") for eps in L2_EPS[dataset]]
    return cells + [Cell("downstream", "cw", "L2", eps, steps=CW_STEPS, params=CW_PARAMS) for eps in L2_EPS[dataset]]


def _autoattack(dataset: str) -> list[Cell]:
    cells = []
    for norm in ("Linf", "L2"):
        cells += [Cell("reconstruction", "apgd", norm, eps, steps=APGD_STEPS, random_start=True)
                  for eps in EPS[norm][dataset]]
    for norm in ("Linf", "L2"):
        cells += [Cell("downstream", "autoattack", norm, eps, params=(("version", "standard"),))
                  for eps in EPS[norm][dataset]]
    return cells


def _adaptive(dataset: str) -> list[Cell]:
    cells = []
    for target in TARGETS:
        for eps in LINF_EPS[dataset]:
            cells.append(_pgd20(target, eps, label="feature_pgd", method="feature_pgd"))
        for eps in LINF_EPS[dataset]:
            cells.append(_pgd20(target, eps, label="mi_pgd", method="mi_pgd", params=(("hsic_weight", HSIC_WEIGHT),)))
    return cells


# The ranked suite (`--submit` runs it). Its settings are measured against a full AutoAttack-standard run of
# pyautoattack on the same samples (docs/RANKING.md): robust accuracy no higher, within the comparison's noise.
STANDARD_EXAMPLES = 1000      # the first 1000 sample ids of the evaluation set
STANDARD_SQUARE_QUERIES = 1000
STANDARD_APGD_STEPS = 100
STANDARD_APGD_TARGETS = 9      # APGD-T's target classes: the 9 most likely wrong ones, as AutoAttack (docs/RANKING.md)
STANDARD_RECON_APGD_STEPS = 50
STANDARD_EOT_SAMPLES = 4


def _standard(dataset: str) -> list[Cell]:
    cells = []
    for eps in LINF_EPS[dataset]:
        cells += [_pgd20("downstream", eps),
                  Cell("downstream", "apgd_ce", "Linf", eps, steps=STANDARD_APGD_STEPS),
                  Cell("downstream", "apgd_t", "Linf", eps, steps=STANDARD_APGD_STEPS,
                       params=(("n_targets", STANDARD_APGD_TARGETS),)),
                  Cell("downstream", "square", "Linf", eps, params=(("n_queries", STANDARD_SQUARE_QUERIES),))]
    for eps in LINF_EPS[dataset]:
        cells += [_pgd20("reconstruction", eps),
                  Cell("reconstruction", "apgd", "Linf", eps, steps=STANDARD_RECON_APGD_STEPS, random_start=True),
                  _pgd_cell("reconstruction", eps, "Linf", suffix="_agnostic", threat="agnostic",
                            eot_samples=STANDARD_EOT_SAMPLES)]
    return cells


# Transfer from the public checkpoint (see the module's docstring). Every transfer attack is PGD-20 (step eps/8,
# random start, the best iterate by its own objective) on a model the target never sees.
TRANSFER_ATTACKS = ("transfer_feature", "transfer_mim", "transfer_l4a")
L4A_LAYER = 0          # L4A lifts the activations of the encoder's first block (Ban & Dong's ViT setting)


def _transfer(dataset: str) -> list[Cell]:
    cells = []
    for eps in LINF_EPS[dataset]:
        cells += [_pgd20("downstream", eps),
                  _pgd20("downstream", eps, label="transfer_feature", method="feature_pgd", source="mim",
                         params=(("view", "full"),)),
                  _pgd20("downstream", eps, label="transfer_mim", method="pgd", source="mim"),
                  _pgd20("downstream", eps, label="transfer_l4a", method="l4a", source="mim",
                         params=(("layer", L4A_LAYER),))]
    for eps in LINF_EPS[dataset]:
        cells += [_pgd20("reconstruction", eps),
                  _pgd20("reconstruction", eps, label="transfer_from_classifier", method="pgd", source="classifier")]
    return cells


# Universal perturbations: one per (checkpoint, budget, loss, seed), crafted on the first UNIVERSAL_TRAIN_IMAGES
# training images (reshuffled every epoch) in UNIVERSAL_STEPS sign steps of eps/10 over batches of UNIVERSAL_BATCH
# images (on Fashion-MNIST's embedded default about 15 s per perturbation for the MIM loss and 45 s for the feature
# loss on one busy CPU core; docs/THREATS.md).
UNIVERSAL_LOSSES = ("feature", "mim")
UNIVERSAL_TRAIN_IMAGES = 2000
UNIVERSAL_BATCH = 50
UNIVERSAL_STEPS = 100


def _universal(dataset: str) -> list[Cell]:
    cells = []
    for target in TARGETS:
        for loss in UNIVERSAL_LOSSES:
            for eps in LINF_EPS[dataset]:
                cells.append(Cell(target, f"universal_{loss}", "Linf", eps, method="universal", steps=UNIVERSAL_STEPS,
                                  alpha=eps / 10, random_start=True,
                                  source="mim" if target == "downstream" else "self",
                                  params=(("loss", loss), ("images", UNIVERSAL_TRAIN_IMAGES),
                                          ("batch", UNIVERSAL_BATCH))))
    return cells


def _corruptions(dataset: str) -> list[Cell]:
    return [Cell(target, name, "severity", float(s), method="corruption", source="none")
            for target in TARGETS for name in CORRUPTIONS for s in SEVERITIES]


def _full(dataset: str) -> list[Cell]:
    seen, cells = set(), []
    for name in _PARTS:
        for c in get_suite(name).build(dataset):
            if c.key() not in seen:
                seen.add(c.key())
                cells.append(c)
    return cells


SUITES: Registry[Suite] = Registry("suite")


def register_suite(suite: Suite, replace: bool = False) -> Suite:
    return SUITES.register(suite.name, suite, replace=replace)


register_suite(Suite("fgsm", "FGSM (one step of eps), Linf; reconstruction mask-aware and mask-agnostic", _fgsm))
register_suite(Suite("bim", "BIM-10 (10 steps of 2.5*eps/10 from the clean image), Linf; reconstruction mask-aware "
                            "and mask-agnostic", _bim))
register_suite(Suite("pgd", "Linf PGD-20, step 2.5*eps/20, random start; reconstruction mask-aware, all pixels",
                     _pgd))
register_suite(Suite("pgd_l2", "L2 PGD-20, step 2.5*eps/20, random start; reconstruction mask-aware and "
                               "mask-agnostic", _pgd_l2))
register_suite(Suite("threat", "the pgd suite plus Linf PGD-20 on the reconstruction under every threat model: "
                               "mask-agnostic, visible patches only, masked patches only (control)", _threat))
register_suite(Suite("cw", "CW-L2 on the classifier at c = 1 and 10 (a sample counts as broken only within the L2 "
                           "budget); "
                           "reconstruction: L2 PGD-20 at the same budgets (CW has no MIM form)",
                     _cw))
register_suite(Suite("autoattack", "AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square) on the classifier, Linf "
                                   "and L2; reconstruction: APGD-100 on the MIM loss, Linf and L2", _autoattack))
register_suite(Suite("adaptive", "adaptive attacks, Linf PGD-20 on both targets: feature-space PGD (encoder / "
                                 "pre-logit features) and MI-aware PGD (loss + HSIC(latent, input))", _adaptive))
_PARTS = ("fgsm", "bim", "pgd", "pgd_l2", "threat", "cw", "autoattack", "adaptive")
register_suite(Suite("full", "every cell of " + ", ".join(_PARTS) + " (each once)", _full))
register_suite(Suite(
    "standard",
    f"the ranked suite, on the first {STANDARD_EXAMPLES} sample ids: downstream, a cascade per Linf budget (PGD-20 on "
    f"every sample, then on the survivors AutoAttack's APGD-CE, APGD-T with {STANDARD_APGD_TARGETS} targets and Square "
    f"with {STANDARD_SQUARE_QUERIES} queries; each row is the robust accuracy after its attack and those before it); "
    f"reconstruction, mask-aware PGD-20, APGD-{STANDARD_RECON_APGD_STEPS} on the MIM loss and mask-agnostic PGD-20 "
    f"(EoT over {STANDARD_EOT_SAMPLES} masks); ranked by the per-sample worst case over every attack of a budget",
    _standard, cascade=True, max_examples=STANDARD_EXAMPLES))

register_suite(Suite(
    "transfer",
    "transfer from the public checkpoint, Linf PGD-20 crafted on one model and evaluated on the other: on the "
    "classifier, label-free feature PGD on the pretrained encoder (all patches visible), PGD on the MIM loss and "
    f"L4A (lift block {L4A_LAYER}'s activations), beside white-box PGD-20; on the reconstruction, PGD-20 on the "
    "classifier, beside white-box PGD-20; ranked by the transfer rows",
    _transfer, ranked_attacks=TRANSFER_ATTACKS + ("transfer_from_classifier",), reference_attack="pgd",
    reconstruction_fallback=True))
register_suite(Suite(
    "universal",
    f"one universal Linf perturbation per budget and loss (encoder features, MIM loss), crafted on the pretrained "
    f"MIM model over {UNIVERSAL_TRAIN_IMAGES} training images ({UNIVERSAL_STEPS} sign steps of eps/10, batches of "
    f"{UNIVERSAL_BATCH}), added unchanged to every test image; both targets",
    _universal, reconstruction_fallback=True))
register_suite(Suite(
    "corruptions",
    f"the {len(CORRUPTIONS)} ImageNet-C corruptions at severities 1-5 (CIFAR-10-C's parameters up to 32 px, the "
    "imagecorruptions package's above), seeded per sample id; both targets; ranked by the mean over corruptions "
    "and severities",
    _corruptions, aggregate="mean", reconstruction_fallback=True))

DEFAULT_SUITE = "pgd"
RANKED_SUITE = "standard"


def standard_suite(dataset: str) -> str:
    """The suite a submission runs when none is named: the one every model of the dataset's board is ranked on."""
    return RANKED_SUITE


def list_suites(filter: Optional[str] = None) -> list[str]:
    """Suite names in the order they are documented (full last)."""
    return SUITES.list(filter)


def get_suite(name: str) -> Suite:
    """The named suite (UnknownNameError, a KeyError, naming the known ones)."""
    return SUITES.get(name)


# -- --list-suites
_SOURCES = {("downstream", "fgsm"): "torchattacks.FGSM", ("downstream", "cw"): "torchattacks.CW, per c",
            ("downstream", "autoattack"): "pyautoattack", ("downstream", "apgd_ce"): "AutoAttack's APGD-CE",
            ("downstream", "apgd_t"): "AutoAttack's APGD-T", ("downstream", "square"): "AutoAttack's Square",
            # the shared ascent loop with torchattacks' arithmetic; it stops on broken samples, which leaves robust
            # accuracy as it is (or lower) but changes the images: --no-early-stop gives torchattacks' images
            ("downstream", "bim"): "torchattacks.BIM's steps, stopping on broken samples",
            ("downstream", "pgd"): "torchattacks.PGD's steps, stopping on broken samples"}


def _step_rule(c: Cell) -> str:
    ratio = Fraction(c.alpha / c.eps).limit_denominator(1000) if c.eps else Fraction(0)
    if ratio == 1:
        return "eps"
    return f"eps/{ratio.denominator}" if ratio.numerator == 1 else f"{ratio.numerator}*eps/{ratio.denominator}"


def _how(c: Cell) -> str:
    p = dict(c.params)
    if c.is_corruption:
        return "ImageNet-C corruption (CIFAR-10-C's parameters up to 32 px, imagecorruptions' above), seeded per sample"
    if c.impl == "universal":
        return (f"one perturbation per budget: {c.steps} sign steps of eps/10 on the {p.get('loss')} loss over batches "
                f"of {p.get('batch')} of the first {p.get('images')} training images, then added to every test image")
    if c.impl == "autoattack":
        return f"{p.get('version', 'standard')}: APGD-CE, APGD-T, FAB-T, Square-5000 (parameter-free)"
    if c.impl == "apgd" and c.target == "reconstruction":
        return f"{c.steps} iterations, step from 2*eps halved when the loss stalls, momentum 0.75, random start"
    if c.impl == "apgd_ce":
        return f"{c.steps} iterations of APGD on the cross-entropy, 1 restart"
    if c.impl == "apgd_t":
        return f"{c.steps} iterations of APGD on the targeted DLR loss per target, {p.get('n_targets', 9)} targets"
    if c.impl == "square":
        return f"{p.get('n_queries', 5000)} queries, p_init 0.8, margin loss (score-based black-box)"
    if c.impl == "cw":
        cs = p.get("c")
        cs = " and ".join(f"{v:g}" for v in cs) if isinstance(cs, tuple) else cs
        return (f"{c.steps} Adam steps, lr {p.get('lr')}, kappa {p.get('kappa')}, c {cs} (smallest success "
                f"kept); broken only within eps")
    text = f"{c.steps} step{'s' if c.steps != 1 else ''} of {_step_rule(c)}"
    return text + (", random start" if c.random_start else "")


_CRAFTED = {"feature_pgd": "label-free: the pretrained encoder's features, all patches visible, pushed from the clean "
                          "ones",
            "pgd": "the MIM loss with the model's own random mask", "l4a": "L4A: the mean squared activation of "
                                                                           "encoder block {layer}, lifted"}


def _what(c: Cell) -> str:
    if c.is_corruption or c.impl == "universal":
        return "" if c.target == "reconstruction" or c.is_corruption else "; evaluated on the classifier"
    if c.source == "mim":
        return f"; crafted on the pretrained MIM model alone ({_CRAFTED[c.impl].format(**dict(c.params))})"
    if c.source == "classifier":
        return "; crafted on the classifier (torchattacks.PGD's steps, all 20), evaluated on the reconstruction"
    if c.target == "reconstruction":
        threat = ("mask-agnostic (EoT over %d masks)" % c.eot_samples if c.threat == "agnostic" else "mask-aware")
        scope = {"all": "all pixels", "visible": "visible patches only", "masked": "masked patches only (control)"}
        extra = f"; {threat}, {scope[c.scope]}"
    else:
        source = _SOURCES.get(("downstream", c.impl))
        if source is not None and c.impl == "pgd" and c.norm == "L2":
            source = source.replace("torchattacks.PGD", "torchattacks.PGDL2")
        extra = f" ({source or 'hand-written'})"
    params = [f"{k}={v}" for k, v in c.params if c.impl not in ("cw", "autoattack", "apgd_t", "square")]
    return extra + ("; " + ", ".join(params) if params else "")


def _group_key(c: Cell) -> tuple:
    if c.is_corruption:   # one line per target: the corruptions and their severities
        return (c.target, "corruptions")
    ratio = round(c.alpha / c.eps, 9) if c.eps else 0.0
    return (c.target, c.attack, c.norm, c.impl, c.steps, ratio, c.random_start, c.threat, c.scope, c.eot_samples,
            c.params)


def describe(suite: Suite, dataset: str) -> str:
    """The suite's matrix for a dataset, one line per attack (its eps grid on the line), for --list-suites.

    The first line names the suite; the rest is the dataset's block (the CLI prints one block per dataset).
    """
    cells = suite.cells(dataset)
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault(_group_key(c), []).append(c)
    norms = [n for n in ("Linf", "L2") if any(c.norm == n for c in cells)]
    grids = "; ".join(f"{norm} {', '.join(format_eps(e) for e in EPS[norm][dataset])}" for norm in norms)
    if any(c.is_corruption for c in cells):
        grids = f"severities {', '.join(map(str, SEVERITIES))}"
    lines = [f"{suite.name}: {suite.description}",
             f"  dataset {dataset} ({len(cells)} cells; budgets {grids}"
             + (f"; the first {suite.max_examples} sample ids" if suite.max_examples else "") + "):"]
    for members in sorted(groups.values(), key=lambda m: TARGETS.index(m[0].target)):
        c = members[0]
        if c.is_corruption:
            names = list(dict.fromkeys(m.attack for m in members))
            levels = ", ".join(format_eps(e) for e in sorted({m.eps for m in members}))
            lines.append(f"    {c.target:<14} {len(names)} corruptions   severity {levels:<16} {_how(c)}: "
                         + ", ".join(names))
            continue
        eps = ", ".join(format_eps(m.eps) for m in members)
        lines.append(f"    {c.target:<14} {c.attack:<16} {c.norm:<4} eps {eps:<20} {_how(c)}{_what(c)}")
    return "\n".join(lines)
