"""Small random transformers models saved as folders, and a Hugging Face Hub cache built from them, offline."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
import transformers

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.3, 0.25]
_SMALL = dict(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=64, layer_norm_eps=0.05)


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Random values in every tensor (biases, layer scales, ...), so that no mapping error can hide behind a 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            one = 1.0 if "layernorm" in name and "weight" in name else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + one)


def save(model, processor, folder: Path, safe: bool = True) -> Path:
    """`save_pretrained` of model and processor; `safe=False` leaves a pytorch_model.bin as older versions wrote."""
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if not safe:
        from safetensors.torch import load_file
        torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    return folder


def pixels(x01: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """What the processor feeds transformers for images in [0, 1]: (x - mean) / std."""
    c = x01.shape[1]
    return (x01 - torch.tensor(mean).view(1, c, 1, 1)) / torch.tensor(std).view(1, c, 1, 1)


def _processor(cls=transformers.ViTImageProcessor, size: int = 32, mean=MEAN, std=STD, **kw):
    return cls(size={"height": size, "width": size}, image_mean=mean, image_std=std, **kw)


def vitmae(folder: Path, seed: int = 1, **config):
    """A randomised ViTMAEForPreTraining saved to `folder`; returns the transformers model."""
    torch.manual_seed(0)
    cfg = transformers.ViTMAEConfig(**dict(_SMALL, decoder_hidden_size=16, decoder_num_hidden_layers=1,
                                           decoder_num_attention_heads=2, decoder_intermediate_size=32,
                                           norm_pix_loss=True, **config))
    model = transformers.ViTMAEForPreTraining(cfg).eval()
    randomise(model, seed)
    c = cfg.num_channels
    save(model, _processor(size=cfg.image_size, mean=MEAN[:c], std=STD[:c], resample=3), folder)
    return model


def beit_mim(folder: Path, seed: int = 2, safe: bool = False):
    """A randomised BeitForMaskedImageModeling (shared relative position bias, absolute embeddings too)."""
    torch.manual_seed(0)
    cfg = transformers.BeitConfig(**_SMALL, vocab_size=40, use_mask_token=True, use_shared_relative_position_bias=True,
                                  use_relative_position_bias=True, use_absolute_position_embeddings=True,
                                  layer_scale_init_value=0.1)
    model = transformers.BeitForMaskedImageModeling(cfg).eval()
    randomise(model, seed)
    save(model, _processor(transformers.BeitImageProcessor, do_center_crop=False), folder, safe=safe)
    return model


def beit_classifier(folder: Path, seed: int = 3, use_mean_pooling: bool = True):
    """A randomised BeitForImageClassification (relative position bias per layer, as BEiT's fine-tuned files)."""
    torch.manual_seed(0)
    cfg = transformers.BeitConfig(**_SMALL, num_labels=7, use_relative_position_bias=True,
                                  use_mean_pooling=use_mean_pooling, layer_scale_init_value=0.1)
    model = transformers.BeitForImageClassification(cfg).eval()
    randomise(model, seed)
    save(model, _processor(transformers.BeitImageProcessor, do_center_crop=False), folder)
    return model


def vit_classifier(folder: Path, seed: int = 4):
    """A randomised ViTForImageClassification (class token after the final LayerNorm)."""
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(transformers.ViTConfig(**_SMALL, num_labels=5)).eval()
    randomise(model, seed)
    save(model, _processor(), folder)
    return model


def put_in_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay `folder` out as huggingface_hub's cache holds a download: models--ORG--NAME/snapshots/<commit>/, refs/."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    shutil.copytree(folder, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)  # no newline: huggingface_hub reads the file as it is
    return snap
