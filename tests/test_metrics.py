"""Metrics against hand-computed cases and scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark import metrics as M


def _mask_first(n_images, n_masked, L=49):
    m = torch.zeros(n_images, L, dtype=torch.bool)
    m[:, :n_masked] = True
    return m


def test_masked_psnr_hand_computed():
    clean = torch.zeros(1, 1, 28, 28)
    recon = torch.zeros(1, 1, 28, 28)
    recon[..., :4, :4] = 0.1   # patch 0 (masked) off by 0.1
    recon[..., 4:8, 4:8] = 0.9  # patch 8 (visible) must not count
    mask = _mask_first(1, 2)    # patches 0 and 1 masked: 32 pixels, 16 of them off by 0.1
    mse = 16 * 0.01 / 32
    assert M.masked_mse(recon, clean, mask, 4).item() == pytest.approx(mse, rel=1e-5)
    assert M.masked_psnr(recon, clean, mask, 4).item() == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)


def test_reconstruction_is_clamped_before_metrics():
    clean = torch.full((1, 1, 28, 28), 1.0)
    recon = torch.full((1, 1, 28, 28), 3.0)
    assert M.masked_mse(recon, clean, _mask_first(1, 5), 4).item() == 0.0


def test_composite_takes_visible_from_clean():
    clean, recon = torch.zeros(1, 1, 28, 28), torch.ones(1, 1, 28, 28)
    comp = M.composite(clean, recon, _mask_first(1, 1), 4)
    assert comp[..., :4, :4].eq(1).all() and comp.sum() == 16


def test_ssim_and_psnr_match_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 28, 28, generator=g)
    b = (a + 0.05 * torch.randn(2, 1, 28, 28, generator=g)).clamp(0, 1)
    ours = M.ssim(a, b)
    for i in range(2):
        ref = skm.structural_similarity(a[i, 0].numpy().astype(np.float64), b[i, 0].numpy().astype(np.float64),
                                        data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
        # piq pads nothing ('valid' convolution) while skimage crops the border: close, not equal
        assert ours[i].item() == pytest.approx(ref, abs=0.02)
        assert M.psnr(a, b)[i].item() == pytest.approx(
            skm.peak_signal_noise_ratio(a[i, 0].numpy(), b[i, 0].numpy(), data_range=1.0), abs=1e-3)


def test_mean_fill_uses_visible_pixels_only():
    img = torch.zeros(1, 1, 28, 28)
    img[..., :4, :4] = 1.0                 # patch 0, masked: its value must not leak into the fill
    img[..., 24:28, 24:28] = 0.5           # patch 48, visible
    fill = M.mean_fill(img, _mask_first(1, 1), 4)
    expected = 0.5 * 16 / (28 * 28 - 16)
    assert fill[0, 0, 0, 0].item() == pytest.approx(expected)
    assert fill[0, 0, 27, 27].item() == 0.5


def test_token_agreement():
    clean = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])   # tokens 1, 0, 1
    adv = torch.tensor([[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])     # tokens 1, 1, 0
    mask = torch.tensor([[True, True, False]])
    assert M.token_agreement(clean, adv, mask).item() == pytest.approx(0.5)


def test_lpips_is_unavailable_offline_with_a_reason_and_never_random(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_alexnet_weights_path", lambda: tmp_path / "absent.pth")
    status = M.load_lpips(allow_download=False)
    assert not status.available and "AlexNet" in status.reason


def test_lpips_plumbing_with_an_injected_network():
    calls = []

    class Dist(torch.nn.Module):
        def forward(self, a, b):
            calls.append(a.shape)
            assert a.min() >= -1 and a.max() <= 1
            return ((a - b) ** 2).mean(dim=(1, 2, 3), keepdim=True)

    fn = M.wrap_lpips(Dist())
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    d = fn(a, b)
    assert d.shape == (3,) and calls[0] == (3, 3, 64, 64)
    assert fn(a, a).abs().max() == 0


def _lpips_by_hand(net, a, b):
    """LPIPS as the package's README computes it: 3 channels, inputs in [-1, 1] (here upsampled to 64 x 64)."""
    a3, b3 = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
    a3 = torch.nn.functional.interpolate(a3, size=(64, 64), mode="bilinear", align_corners=False)
    b3 = torch.nn.functional.interpolate(b3, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        return net(a3 * 2 - 1, b3 * 2 - 1).flatten()


def _lpips_network(random_backbone: bool):
    import warnings

    import lpips
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the package's own linear calibration weights (lpips/weights/v0.1/alex.pth) always; the AlexNet backbone
        # is a seeded stand-in unless its real ImageNet weights are in the torch hub cache
        return lpips.LPIPS(net="alex", pretrained=True, pnet_rand=random_backbone, verbose=False).eval()


def test_a_real_lpips_network_through_the_metric():
    """The metric computes what lpips.LPIPS computes, with the package's calibrated linear layers (backbone: a
    seeded stand-in; the real backbone is never downloaded or faked at run time)."""
    net = _lpips_network(random_backbone=True)
    g = torch.Generator().manual_seed(1)
    a = torch.rand(4, 1, 28, 28, generator=g)
    b = (a + 0.2 * torch.randn(4, 1, 28, 28, generator=g)).clamp(0, 1)
    got = M.wrap_lpips(net)(a, b)
    torch.testing.assert_close(got, _lpips_by_hand(net, a, b), rtol=1e-5, atol=1e-6)
    assert (got > 0).all() and torch.equal(M.wrap_lpips(net)(a, a), torch.zeros(4))
    lin = net.lin0.model[-1].weight
    assert (lin >= 0).all() and lin.abs().sum() > 0   # the calibrated (non-negative) weights, not a fresh init


def test_lpips_with_its_real_backbone_when_it_is_in_the_cache():
    if not M._alexnet_weights_path().is_file():
        pytest.skip(f"the AlexNet ImageNet weights are not in {M._alexnet_weights_path().parent} (offline machine)")
    status = M.load_lpips(allow_download=False)
    assert status.available
    net = _lpips_network(random_backbone=False)
    a, b = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(status.fn(a, b), _lpips_by_hand(net, a, b))


def test_metrics_are_float32_under_bf16_autocast():
    """A bf16 run changes the model's outputs, never the metric arithmetic: same values as outside autocast."""
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(6, 1, 28, 28, generator=g)
    recon = (clean + 0.1 * torch.randn(6, 1, 28, 28, generator=g)).clamp(0, 1)
    mask = torch.rand(6, 49, generator=g).argsort(1) < 37
    fns = {"ssim": lambda r: M.ssim(r, clean), "psnr": lambda r: M.psnr(r, clean),
           "masked_psnr": lambda r: M.masked_psnr(r, clean, mask, 4),
           "masked_mse": lambda r: M.masked_mse(r, clean, mask, 4)}
    for name, fn in fns.items():
        ref = fn(recon)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = fn(recon)
            from_bf16 = fn(recon.bfloat16())   # a bf16 model output is measured in float32 too
        assert got.dtype == from_bf16.dtype == torch.float32, name
        assert torch.equal(got, ref), name
        assert torch.allclose(from_bf16, fn(recon.bfloat16().float())), name
