"""Training objectives as modules whose forward returns (loss, logs), so DDP sees every parameter use.

The MIM objective switches on the pretraining defenses of its stage, the fine-tuning objective the
classifier defenses (see `defenses.py`). Inner maximisations reuse the benchmark's attacks: the MIM-loss
attacks of `benchmark.attacks.reconstruction` and torchattacks for the classifier.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.training import MIMFGSM, MIMPGD, normalized_hsic

from .. import masking
from . import defenses as D
from .recipes import StageConfig

_ADV_PRETRAIN = ("adversarial", "mimir", "denoising", "contrastive")


def random_shift_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translations of up to `pad` pixels (zero fill) and horizontal flips, vectorised over the batch."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = torch.rand(n, generator=generator).to(x.device) < 0.5
    rows = oy[:, None] + torch.arange(h, device=x.device)[None]
    cols = ox[:, None] + torch.arange(w, device=x.device)[None]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator per (seed, step), so a resumed run draws what the uninterrupted run drew."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


def _pseudo_ids(seed: int, step: int, n: int) -> torch.Tensor:
    """Training samples get per-step ids, so per-sample seeded draws (masks, random starts) never repeat."""
    return torch.arange(n) + (step * n + seed * 7_919_113) % (2 ** 40)


class MIMPretrainObjective(nn.Module):
    """MIM pretraining: the family's loss on fresh masks, plus the stage's pretraining defenses."""

    def __init__(self, model: nn.Module, cfg: StageConfig, seed: int) -> None:
        super().__init__()
        D.check_defenses(cfg.defenses, "pretrain")
        self.model, self.cfg, self.seed = model, cfg, seed
        self.defenses = {name: D.settings(cfg.defenses, name) for name in cfg.defenses}
        self._attack_cfg = next((self.defenses[n] for n in _ADV_PRETRAIN if n in self.defenses), None)

    def train_mask(self, x: torch.Tensor, step: int, ids: torch.Tensor) -> torch.Tensor:
        p, ratio = self.model.patch_size, self.model.mask_ratio
        if "saliency_masking" in self.defenses:
            scores = masking.patch_saliency(x, p)
            t = self.defenses["saliency_masking"]["temperature"]
            return masking.scored_mask(scores, ratio, ids, self.seed, temperature=t).to(x.device)
        if "entropy_masking" in self.defenses:
            s = self.defenses["entropy_masking"]
            scores = masking.patch_entropy(x, p, bins=s["bins"]) + 1e-3
            return masking.scored_mask(scores, ratio, ids, self.seed, temperature=s["temperature"]).to(x.device)
        noise = torch.rand(x.shape[0], self.model.num_patches, generator=step_generator(self.seed, step))
        return masking.mask_from_noise(noise, ratio).to(x.device)

    def _adversarial(self, x: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        s = self._attack_cfg
        if s["attack"] == "fgsm":
            attack = MIMFGSM(self.model, s["eps"], seed=self.seed)
        else:
            alpha = s["alpha"] if s["alpha"] is not None else (s["eps"] if s["steps"] == 1 else 2.5 * s["eps"] / s["steps"])
            attack = MIMPGD(self.model, s["eps"], steps=s["steps"], alpha=alpha, seed=self.seed, keep_best=False)
        return attack(x, mask, ids)

    def forward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        model, d = self.model, self.defenses
        ids = _pseudo_ids(self.seed, step, x.shape[0])
        mask = self.train_mask(x, step, ids)
        x_adv = self._adversarial(x, mask, ids) if self._attack_cfg is not None else None
        terms: dict[str, torch.Tensor] = {}
        clean_out = None
        if "adversarial" in d:
            terms["adv"] = model.forward_mim(x_adv, mask, target=x_adv).loss
            if d["adversarial"]["joint"]:
                clean_out = model.forward_mim(x, mask)
                terms["clean"] = clean_out.loss
        elif "mimir" in d:
            out = model.forward_mim(x_adv, mask, target=x)
            terms["mim"] = out.loss
            terms["hsic"] = d["mimir"]["hsic_weight"] * normalized_hsic(out.latent.flatten(1), x_adv.flatten(1),
                                                                        sigma_x=d["mimir"]["sigma"])
        elif "ensemble_encoding" in d:
            s = d["ensemble_encoding"]
            g = step_generator(self.seed, step, 3)
            x_pert = (x + s["sigma"] * torch.randn(x.shape, generator=g).to(x.device)).clamp(0, 1)
            lat_c, ids_keep = model.encode_with_ids(x, mask)
            lat_p, _ = model.encode_with_ids(x_pert, mask)
            terms["clean"] = model.loss_from_pred(model.decode(0.5 * (lat_c + lat_p), ids_keep), x, mask)
        else:
            clean_out = model.forward_mim(x, mask)
            terms["clean"] = clean_out.loss
        if "denoising" in d:
            recon = model.forward_mim(x_adv, mask).reconstruction
            err = (model.normalizer(recon) - model.normalizer(x)) ** 2
            terms["denoise"] = d["denoising"]["weight"] * err.mean()
        if "contrastive" in d:
            s = d["contrastive"]
            z_clean = (clean_out.latent if clean_out is not None else model.encode(x, mask)).mean(1)
            z_adv = model.encode(x_adv, mask).mean(1)
            terms["nce"] = s["weight"] * D.info_nce(z_clean, z_adv, s["temperature"])
        loss = sum(terms.values())
        return loss, ({k: v.detach() for k, v in terms.items()} if len(terms) > 1 else {})


class FinetuneObjective(nn.Module):
    """Cross-entropy fine-tuning of the classifier, with PGD-AT / FGSM-RS or TRADES when the stage asks."""

    def __init__(self, classifier: nn.Module, cfg: StageConfig, seed: int) -> None:
        super().__init__()
        D.check_defenses(cfg.defenses, "finetune")
        self.classifier, self.cfg, self.seed = classifier, cfg, seed
        self.defenses = {name: D.settings(cfg.defenses, name) for name in cfg.defenses}
        self._attack = self._build_attack()

    def _build_attack(self):
        import torchattacks
        if "adversarial_finetune" in self.defenses:
            s = self.defenses["adversarial_finetune"]
            if s["attack"] == "fgsm_rs":  # Wong et al.: uniform start, one step of 1.25 eps
                return torchattacks.FFGSM(self.classifier, eps=s["eps"],
                                          alpha=s["alpha"] if s["alpha"] is not None else 1.25 * s["eps"])
            alpha = s["alpha"] if s["alpha"] is not None else 2.5 * s["eps"] / s["steps"]
            return torchattacks.PGD(self.classifier, eps=s["eps"], alpha=alpha, steps=s["steps"], random_start=True)
        if "trades" in self.defenses:
            s = self.defenses["trades"]
            alpha = s["alpha"] if s["alpha"] is not None else 2.5 * s["eps"] / s["steps"]
            return torchattacks.TPGD(self.classifier, eps=s["eps"], alpha=alpha, steps=s["steps"])
        return None

    def prepare(self, x: torch.Tensor, step: int) -> torch.Tensor:
        return random_shift_flip(x, step_generator(self.seed, step, 1)) if self.cfg.augment else x

    def forward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        x = self.prepare(x, step)
        ls = self.cfg.label_smoothing
        if "adversarial_finetune" in self.defenses:
            x_adv = self._attack(x, y)
            logits = self.classifier(x_adv)
            loss = F.cross_entropy(logits, y, label_smoothing=ls)
            w = self.defenses["adversarial_finetune"]["clean_weight"]
            if w:
                loss = loss + w * F.cross_entropy(self.classifier(x), y, label_smoothing=ls)
            return loss, {"adv_acc": (logits.argmax(1) == y).float().mean()}
        if "trades" in self.defenses:
            x_adv = self._attack(x, y)
            logits, logits_adv = self.classifier(x), self.classifier(x_adv)
            natural = F.cross_entropy(logits, y, label_smoothing=ls)
            robust = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits, 1), reduction="batchmean")
            beta = self.defenses["trades"]["beta"]
            return natural + beta * robust, {"acc": (logits.argmax(1) == y).float().mean(), "kl": robust.detach()}
        logits = self.classifier(x)
        loss = F.cross_entropy(logits, y, label_smoothing=ls)
        return loss, {"acc": (logits.argmax(1) == y).float().mean()}


def maybe_spectral_norm(model: nn.Module, defenses: dict) -> Optional[nn.Module]:
    return D.apply_spectral_norm(model) if "spectral_norm" in defenses else model
