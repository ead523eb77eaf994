"""Per-image metrics of DESIGN.md: masked MSE/PSNR, composite SSIM/LPIPS, input PSNR, accuracy, token agreement.

PSNR and SSIM come from piq, LPIPS from lpips. Reconstructions are clamped to [0, 1] before any metric, and
every metric is computed in float32 with autocast off, so a bf16 run changes the model's outputs, not the metrics.
Every function returns one value per image (N,), so cells average them and shards can be merged exactly.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import piq
import torch
import torch.nn.functional as F

from zoo.models._common import patch_mask_to_pixels

LPIPS_MIN_SIZE = 64  # AlexNet's feature pyramid needs at least this; smaller images are upsampled (bilinear)


def _in_fp32(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Run a metric in float32 with autocast off (under bf16 autocast, piq's SSIM alone moves by ~2e-3)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        def to_fp32(a):
            return a.float() if torch.is_tensor(a) and a.is_floating_point() else a
        args, kwargs = [to_fp32(a) for a in args], {k: to_fp32(v) for k, v in kwargs.items()}
        device = next((a.device.type for a in [*args, *kwargs.values()] if torch.is_tensor(a)), "cpu")
        with torch.autocast(device, enabled=False):
            return fn(*args, **kwargs)
    return wrapper


def masked_patches(img: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    """The masked patches of each image laid side by side: N x C x p x (M*p) (M = masked patches per image)."""
    n, c, h, w = img.shape
    patches = img.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c, p, p)
    m = mask.sum(1)
    if not bool((m == m[0]).all()):
        raise ValueError("masked metrics need the same number of masked patches in every image")
    sel = patches[mask].reshape(n, int(m[0]), c, p, p)
    return sel.permute(0, 2, 3, 1, 4).reshape(n, c, p, -1)


@_in_fp32
def masked_mse(recon: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    pix = patch_mask_to_pixels(mask, p, (clean.shape[2] // p, clean.shape[3] // p)).to(clean.dtype)
    err = ((recon.clamp(0, 1) - clean) ** 2 * pix).sum(dim=(1, 2, 3))
    return err / (pix.sum(dim=(1, 2, 3)) * clean.shape[1])


@_in_fp32
def masked_psnr(recon: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    """PSNR (data range 1) over the masked patches only, through piq."""
    a = masked_patches(recon.clamp(0, 1), mask, p)
    b = masked_patches(clean, mask, p)
    return piq.psnr(a, b, data_range=1.0, reduction="none")


def composite(clean: torch.Tensor, recon: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    """Clean visible pixels, reconstructed masked pixels (what MAE's paper figures show)."""
    pix = patch_mask_to_pixels(mask, p, (clean.shape[2] // p, clean.shape[3] // p)).to(clean.dtype)
    return clean * (1 - pix) + recon.clamp(0, 1) * pix


@_in_fp32
def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM through piq (Gaussian 11x11, sigma 1.5), shrinking the kernel for images under 11 pixels."""
    k = min(11, a.shape[-1] - (1 - a.shape[-1] % 2), a.shape[-2] - (1 - a.shape[-2] % 2))
    return piq.ssim(a.clamp(0, 1), b.clamp(0, 1), data_range=1.0, kernel_size=k, reduction="none")


@_in_fp32
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return piq.psnr(a.clamp(0, 1), b.clamp(0, 1), data_range=1.0, reduction="none")


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).to(torch.float32)


def token_agreement(clean_logits: torch.Tensor, adv_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of masked positions whose top-1 visual token is unchanged (BEiT), per image."""
    same = (clean_logits.argmax(-1) == adv_logits.argmax(-1)).to(torch.float32) * mask
    return same.sum(1) / mask.sum(1)


def token_accuracy(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of masked positions whose top-1 predicted visual token is the tokenizer's token (BEiT), per image."""
    hit = (logits.argmax(-1) == tokens.to(logits.device)).to(torch.float32) * mask
    return hit.sum(1) / mask.sum(1)


def mean_fill(img: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    """Each image's masked patches filled with the mean of its visible pixels: the trivial baseline."""
    pix = patch_mask_to_pixels(mask, p, (img.shape[2] // p, img.shape[3] // p)).to(img.dtype)
    vis = 1 - pix
    mean = (img * vis).sum(dim=(2, 3), keepdim=True) / vis.sum(dim=(2, 3), keepdim=True)
    return img * vis + mean * pix


# -- LPIPS ----------------------------------------------------------------------------------------------------
@dataclass
class LPIPSStatus:
    """The LPIPS network when its weights are at hand, else None and the reason (shown in reports)."""

    fn: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.fn is not None


_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def _alexnet_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_FILE


def wrap_lpips(net: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """LPIPS distance per image for images in [0, 1] (gray -> 3 channels, small images upsampled)."""
    @_in_fp32
    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = a.clamp(0, 1), b.clamp(0, 1)
        if a.shape[1] == 1:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        if min(a.shape[-2:]) < LPIPS_MIN_SIZE:
            size = (max(LPIPS_MIN_SIZE, a.shape[-2]), max(LPIPS_MIN_SIZE, a.shape[-1]))
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
            b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        with torch.no_grad():
            return net(a * 2 - 1, b * 2 - 1).flatten()
    return fn


def load_lpips(device: torch.device | str = "cpu", allow_download: bool = True) -> LPIPSStatus:
    """LPIPS (AlexNet, v0.1) with its real ImageNet backbone; unavailable (with the reason) when it is missing.

    The backbone comes from the torch hub cache; it is never replaced by random weights.
    """
    try:
        import lpips
    except ImportError:
        return LPIPSStatus(None, "the lpips package is not installed")
    if not _alexnet_weights_path().is_file():
        if not allow_download:
            return LPIPSStatus(None, f"AlexNet weights not in the torch hub cache ({_alexnet_weights_path()})")
        try:
            import contextlib
            import io

            from torchvision.models import AlexNet_Weights
            said = io.StringIO()  # torch.hub announces the download on stdout: shown only when it worked
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            sys.stderr.write(said.getvalue())
        except Exception as exc:
            why = str(getattr(exc, "reason", exc)).splitlines()[0][:100]
            return LPIPSStatus(None, f"LPIPS unavailable offline: its AlexNet backbone weights are not in "
                                     f"{_alexnet_weights_path().parent} and could not be downloaded ({why})")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    return LPIPSStatus(wrap_lpips(net))
