"""Reconstruction attacks: within budget, stronger than clean, scopes behave, deterministic per sample id."""
from __future__ import annotations

import pytest
import torch

from benchmark.attacks.checks import ThreatModelViolation, check_adversarial, perturbation_norm
from benchmark.attacks.reconstruction import MIMBIM, MIMFGSM, MIMPGD, mim_attack_loss

from .helpers import tiny_mae


@pytest.fixture(scope="module")
def batch(fmnist_test):
    ids = torch.arange(8)
    return fmnist_test.images[:8], ids


@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 1.0)])
@pytest.mark.parametrize("cls", [MIMFGSM, MIMBIM, MIMPGD])
def test_attacks_stay_in_budget_and_raise_the_loss(batch, cls, norm, eps):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    x_adv = cls(model, eps, norm=norm, steps=5) if cls is not MIMFGSM else cls(model, eps, norm=norm)
    x_adv = x_adv(x, mask, ids)
    check_adversarial(x_adv, x, eps, norm)
    with torch.no_grad():
        clean = mim_attack_loss(model, x, x, mask)
        adv = mim_attack_loss(model, x_adv, x, mask)
    assert (adv >= clean - 1e-6).all() and adv.mean() > clean.mean()


def test_masked_scope_leaves_mae_reconstruction_unchanged(batch):
    """The MAE encoder never sees masked patches: perturbing only them changes nothing (a control)."""
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    x_adv = MIMPGD(model, 0.2, steps=3, scope="masked")(x, mask, ids)
    assert perturbation_norm(x_adv - x, "Linf").max() > 0.05  # the attack did perturb the masked pixels
    with torch.no_grad():
        torch.testing.assert_close(model.forward_mim(x_adv, mask).reconstruction,
                                   model.forward_mim(x, mask).reconstruction)


def test_visible_scope_touches_only_visible_patches(batch):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    x_adv = MIMPGD(model, 0.2, steps=3, scope="visible")(x, mask, ids)
    from zoo.models._common import patch_mask_to_pixels
    pix = patch_mask_to_pixels(mask, 4, (7, 7))
    assert ((x_adv - x) * pix).abs().max() == 0
    assert ((x_adv - x) * (1 - pix)).abs().max() > 0


def test_random_start_depends_on_sample_id_not_batch(batch):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    full = MIMPGD(model, 0.1, steps=2)(x, mask, ids)
    part = MIMPGD(model, 0.1, steps=2)(x[3:5], mask[3:5], ids[3:5])
    torch.testing.assert_close(full[3:5], part, atol=1e-6, rtol=0)


def test_agnostic_attack_is_evaluated_on_the_fixed_mask_and_in_budget(batch):
    model = tiny_mae()
    x, ids = batch
    mask = model.make_mask(ids)
    x_adv = MIMPGD(model, 0.1, steps=3, threat="agnostic", eot_samples=3)(x, mask, ids)
    check_adversarial(x_adv, x, 0.1, "Linf")
    with pytest.raises(ValueError):
        MIMPGD(model, 0.1, threat="agnostic", scope="visible")


def test_checks_refuse_out_of_ball_and_out_of_range():
    x = torch.full((2, 1, 4, 4), 0.5)
    with pytest.raises(ThreatModelViolation, match="exceeds eps"):
        check_adversarial(x + 0.2, x, 0.1, "Linf")
    with pytest.raises(ThreatModelViolation, match=r"\[0, 1\]"):
        check_adversarial(x + 0.6, x, 1.0, "Linf")
    with pytest.raises(ThreatModelViolation, match="non-finite"):
        check_adversarial(x * float("nan"), x, 1.0, "Linf")
    check_adversarial(x + 0.1, x, 0.1, "Linf")  # on the boundary is allowed
