"""Hugging Face transformers folders of the published models, loaded by key mapping (transformers not needed).

Supported: `ViTMAEForPreTraining` (MAE) and `BeitForMaskedImageModeling` (BEiT) folders, which load as a bundle's
MIM model, and `BeitForImageClassification` / `ViTForImageClassification` folders, which load as its classifier
(family `beit_classifier` / `vit_classifier`), as `save_pretrained` writes them: `config.json` (architecture,
`layer_norm_eps` included), `model.safetensors` or `pytorch_model.bin` (or their sharded index), and
`preprocessor_config.json` (the normalisation, which mimbench applies inside the model). The weights are renamed
to the official layout and loaded strictly, so the model computes what transformers computes from the same folder.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from .checkpoints import CheckpointError, PathLike, apply_state_dict, read_state_dict, sha256sum
from .models import build_for_weights
from .registry import CheckpointSource, ModelCard, with_stats

HF_MIM_ARCHITECTURES = {"ViTMAEForPreTraining": "mae", "BeitForMaskedImageModeling": "beit"}
HF_CLASSIFIER_ARCHITECTURES = {"BeitForImageClassification": "beit_classifier",
                               "ViTForImageClassification": "vit_classifier"}
HF_ARCHITECTURES = {**HF_MIM_ARCHITECTURES, **HF_CLASSIFIER_ARCHITECTURES}
_MODEL_TYPES = {"vit_mae": "ViTMAEForPreTraining", "beit": "BeitForMaskedImageModeling"}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
# transformers' config defaults: a config.json written by transformers 4.x leaves default values out.
_CONFIG_DEFAULTS = {
    "mae": dict(image_size=224, patch_size=16, num_channels=3, hidden_size=768, num_hidden_layers=12,
                num_attention_heads=12, intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True,
                decoder_hidden_size=512, decoder_num_hidden_layers=8, decoder_num_attention_heads=16,
                decoder_intermediate_size=2048, mask_ratio=0.75, norm_pix_loss=False),
    "beit": dict(image_size=224, patch_size=16, num_channels=3, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-12,
                 vocab_size=8192, use_mask_token=False, use_absolute_position_embeddings=False,
                 use_relative_position_bias=False, use_shared_relative_position_bias=False,
                 layer_scale_init_value=0.1, use_mean_pooling=True),
    "vit_classifier": dict(image_size=224, patch_size=16, num_channels=3, hidden_size=768, num_hidden_layers=12,
                           num_attention_heads=12, intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-12,
                           qkv_bias=True),
}
_CONFIG_DEFAULTS["beit_classifier"] = _CONFIG_DEFAULTS["beit"]
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


# -- config.json -> card ---------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _architecture(cfg: dict[str, Any], path: Path) -> str:
    names = list(cfg.get("architectures") or [])
    if not names and cfg.get("model_type") in _MODEL_TYPES:
        names = [_MODEL_TYPES[cfg["model_type"]]]
    for name in names:
        if name in HF_ARCHITECTURES:
            return name
    known = list(HF_ARCHITECTURES)
    raise CheckpointError(f"{path}: a Hugging Face {', '.join(names) or cfg.get('model_type', 'unknown')} model; "
                          f"mimbench loads {', '.join(known[:-1])} and {known[-1]} folders")


def hf_architecture(folder: PathLike) -> str:
    """The supported transformers architecture a folder's config.json names (CheckpointError otherwise)."""
    path = Path(folder) / "config.json"
    return _architecture(_read_json(path), path)


def _num_classes(cfg: dict[str, Any], path: Path) -> int:
    labels = cfg.get("id2label")
    n = len(labels) if isinstance(labels, dict) and labels else cfg.get("num_labels", 2)
    if not isinstance(n, int) or n < 1:
        raise CheckpointError(f"{path}: no number of classes (id2label or num_labels)")
    return n


def _mlp_ratio(hidden: int, intermediate: int, what: str, path: Path) -> float:
    ratio = intermediate / hidden
    if int(hidden * ratio) != intermediate:
        raise CheckpointError(f"{path}: {what} intermediate size {intermediate} is not a whole multiple of {hidden}")
    return ratio


def _image_size(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value[0] == value[1] else (int(value[0]), int(value[1]))
    return int(value)


def _arch_from_config(family: str, cfg: dict[str, Any], path: Path) -> dict[str, Any]:
    c = dict(_CONFIG_DEFAULTS[family], **cfg)
    if c["hidden_act"] != "gelu":
        raise CheckpointError(f"{path}: hidden_act={c['hidden_act']!r}; the official models use exact GELU")
    arch = dict(img_size=_image_size(c["image_size"]), patch_size=int(c["patch_size"]), in_chans=int(c["num_channels"]),
                embed_dim=int(c["hidden_size"]), depth=int(c["num_hidden_layers"]),
                num_heads=int(c["num_attention_heads"]),
                mlp_ratio=_mlp_ratio(c["hidden_size"], c["intermediate_size"], "the encoder's", path),
                norm_layer_eps=float(c["layer_norm_eps"]))
    if family == "mae":
        if not c["qkv_bias"]:
            raise CheckpointError(f"{path}: qkv_bias=false; MAE's attention always has q, k, v biases")
        decoder_ratio = _mlp_ratio(c["decoder_hidden_size"], c["decoder_intermediate_size"], "the decoder's", path)
        if decoder_ratio != arch["mlp_ratio"]:
            raise CheckpointError(f"{path}: encoder and decoder MLP ratios differ ({arch['mlp_ratio']:g} vs "
                                  f"{decoder_ratio:g}); MAE uses one mlp_ratio")
        arch.update(decoder_embed_dim=int(c["decoder_hidden_size"]), decoder_depth=int(c["decoder_num_hidden_layers"]),
                    decoder_num_heads=int(c["decoder_num_attention_heads"]), norm_pix_loss=bool(c["norm_pix_loss"]),
                    mask_ratio=float(c["mask_ratio"]))
    elif family == "vit_classifier":  # ViTForImageClassification: class token after the final LayerNorm
        arch.update(num_classes=_num_classes(c, path), qkv_bias=bool(c["qkv_bias"]), global_pool=False)
    elif family == "beit_classifier":  # mean pooling + pooler LayerNorm, or the class token after a final LayerNorm
        arch.update(num_classes=_num_classes(c, path), qkv_bias=True,
                    init_values=float(c["layer_scale_init_value"]) or None,
                    use_abs_pos_emb=bool(c["use_absolute_position_embeddings"]),
                    use_rel_pos_bias=bool(c["use_relative_position_bias"]),
                    use_shared_rel_pos_bias=bool(c["use_shared_relative_position_bias"]),
                    use_mean_pooling=bool(c["use_mean_pooling"]))
    else:
        if not c["use_mask_token"]:
            raise CheckpointError(f"{path}: use_mask_token=false; masked image modelling needs BEiT's mask token")
        if not c["use_mean_pooling"]:
            raise CheckpointError(f"{path}: use_mean_pooling=false gives BeitForMaskedImageModeling a second final "
                                  f"LayerNorm that BEiT's pre-training model does not have; not supported")
        arch.update(vocab_size=int(c["vocab_size"]), qkv_bias=True,
                    init_values=float(c["layer_scale_init_value"]) or None,
                    use_abs_pos_emb=bool(c["use_absolute_position_embeddings"]),
                    use_rel_pos_bias=bool(c["use_relative_position_bias"]),
                    use_shared_rel_pos_bias=bool(c["use_shared_relative_position_bias"]))
    return arch


def _size(value: Any, default: int) -> Any:
    """A processor's size: an int (shorter side) or [height, width] (resized to exactly that)."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return int(value)
    if "shortest_edge" in value:
        return int(value["shortest_edge"])
    return [int(value["height"]), int(value["width"])]


def _preprocessing(folder: Path, arch: dict[str, Any]) -> dict[str, Any]:
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no preprocessor_config.json, so the model's normalisation is unknown "
                              f"(save the image processor with the model)")
    p = _read_json(path)
    if p.get("do_rescale", True) and abs(float(p.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        raise CheckpointError(f"{path}: rescale_factor {p['rescale_factor']} (mimbench feeds pixels scaled by 1/255)")
    normalize = p.get("do_normalize", True)
    img = arch["img_size"] if isinstance(arch["img_size"], int) else list(arch["img_size"])
    crop_default = img if isinstance(img, int) else img[0]
    resize = _size(p.get("size"), crop_default) if p.get("do_resize", True) else crop_default
    crop = _size(p.get("crop_size"), crop_default) if p.get("do_center_crop", False) else crop_default
    if isinstance(crop, list):
        crop = crop[0] if crop[0] == crop[1] else crop
    resample = p.get("resample", 2)
    return {"resize": resize, "crop": crop,
            "interpolation": _PIL_RESAMPLE.get(resample, str(resample)) if isinstance(resample, int) else str(resample),
            "mean": [float(v) for v in p["image_mean"]] if normalize else [0.0] * arch["in_chans"],
            "std": [float(v) for v in p["image_std"]] if normalize else [1.0] * arch["in_chans"],
            "source": "preprocessor_config.json"}


def hf_card(folder: PathLike) -> ModelCard:
    """The card of a Hugging Face folder: architecture from config.json, preprocessing from the processor.

    A MIM folder fills the card's MIM side; a classifier folder (family `beit_classifier` / `vit_classifier`)
    only its classifier side (`arch` empty, no MIM source).
    """
    folder = Path(folder)
    cfg = _read_json(folder / "config.json")
    arch_name = _architecture(cfg, folder / "config.json")
    family = HF_ARCHITECTURES[arch_name]
    arch = _arch_from_config(family, cfg, folder / "config.json")
    weights = find_weights(folder)
    common = dict(name=folder.resolve().name, family=family, dataset="imagenet", local_dir=str(folder),
                  preprocessing=_preprocessing(folder, arch),
                  description=f"Hugging Face transformers {arch_name} folder")
    if family in HF_MIM_ARCHITECTURES.values():
        return ModelCard(arch=arch, mim_sources=[CheckpointSource(weights)], classifier_arch=None, **common)
    return ModelCard(arch={}, classifier_arch=arch, classifier_family=family,
                     classifier_sources=[CheckpointSource(weights)], **common)


def find_weights(folder: PathLike) -> str:
    """The weights file of a transformers folder: safetensors first, then pytorch_model.bin (or a shard index)."""
    folder = Path(folder)
    weights = next((f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{folder}: no weights ({' or '.join(_WEIGHT_FILES[::2])})")
    return weights


# -- weights: transformers names -> official names ----------------------------------------------------------
_LAYER = re.compile(r"^(?:vit\.encoder\.layer|vit\.layers|beit\.encoder\.layer|beit\.layers"
                    r"|(decoder)\.decoder_layers|(decoder)\.decoder_encoder\.layer)\.(\d+)\.(.+)$")
# Inside a layer, the names of transformers 4.x files (as on the Hub and as save_pretrained writes them) and of 5.x.
_IN_LAYER = (
    ("attention.attention.query.", "attn.q."), ("attention.q_proj.", "attn.q."),
    ("attention.attention.key.", "attn.k."), ("attention.k_proj.", "attn.k."),
    ("attention.attention.value.", "attn.v."), ("attention.v_proj.", "attn.v."),
    ("attention.output.dense.", "attn.proj."), ("attention.o_proj.", "attn.proj."),
    ("attention.attention.relative_position_bias.", "attn."), ("relative_position_bias.", "attn."),
    ("intermediate.dense.", "mlp.fc1."), ("mlp.fc1.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."), ("mlp.fc2.", "mlp.fc2."),
    ("layernorm_before.", "norm1."), ("layernorm_after.", "norm2."),
    ("lambda_1", "gamma_1"), ("lambda_2", "gamma_2"),
)
_TOP = {
    "mae": (("vit.embeddings.cls_token", "cls_token"), ("vit.embeddings.position_embeddings", "pos_embed"),
            ("vit.embeddings.patch_embeddings.projection.", "patch_embed.proj."), ("vit.layernorm.", "norm."),
            ("decoder.mask_token", "mask_token"), ("decoder.decoder_pos_embed", "decoder_pos_embed"),
            ("decoder.decoder_embed.", "decoder_embed."), ("decoder.decoder_norm.", "decoder_norm."),
            ("decoder.decoder_pred.", "decoder_pred.")),
    "beit": (("beit.embeddings.cls_token", "cls_token"), ("beit.embeddings.mask_token", "mask_token"),
             ("beit.embeddings.position_embeddings", "pos_embed"),
             ("beit.embeddings.patch_embeddings.projection.", "patch_embed.proj."),
             ("beit.encoder.relative_position_bias.", "rel_pos_bias."),
             ("beit.shared_position_bias.", "rel_pos_bias."),
             ("layernorm.", "norm."), ("lm_head.", "lm_head.")),
    "vit_classifier": (("vit.embeddings.cls_token", "cls_token"), ("vit.embeddings.position_embeddings", "pos_embed"),
                       ("vit.embeddings.patch_embeddings.projection.", "patch_embed.proj."),
                       ("vit.layernorm.", "norm."), ("classifier.", "head.")),
    "beit_classifier": (("beit.embeddings.cls_token", "cls_token"), ("beit.embeddings.mask_token", "mask_token"),
                        ("beit.embeddings.position_embeddings", "pos_embed"),
                        ("beit.embeddings.patch_embeddings.projection.", "patch_embed.proj."),
                        ("beit.encoder.relative_position_bias.", "rel_pos_bias."),
                        ("beit.shared_position_bias.", "rel_pos_bias."),
                        ("beit.layernorm.", "norm."), ("beit.pooler.layernorm.", "fc_norm."), ("classifier.", "head.")),
}
_BEIT_ATTENTION = ("beit", "beit_classifier")  # q and v biases, no k bias


def _rename(key: str, family: str) -> str:
    m = _LAYER.match(key)
    if m:
        prefix = "decoder_blocks" if (m.group(1) or m.group(2)) else "blocks"
        rest = m.group(4)
        for old, new in _IN_LAYER:
            if rest.startswith(old):
                return f"{prefix}.{m.group(3)}.{new}{rest[len(old):]}"
        return key
    for old, new in _TOP[family]:
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old):]
    return key  # unknown: the strict check lists it as foreign


def hf_to_official(state: dict[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """Rename a transformers state dict to the official layout and fuse the separate q, k, v projections."""
    renamed = {_rename(k, family): v for k, v in state.items()}
    out = {k: v for k, v in renamed.items() if not re.search(r"\.attn\.[qkv]\.", k)}
    layers = sorted({k.split(".attn.")[0] for k in renamed if re.search(r"\.attn\.[qkv]\.", k)})
    for layer in layers:
        parts = {p: renamed.get(f"{layer}.attn.{p}") for p in ("q.weight", "k.weight", "v.weight", "q.bias",
                                                              "k.bias", "v.bias")}
        if any(parts[p] is None for p in ("q.weight", "k.weight", "v.weight")):
            out.update({f"{layer}.attn.{p}": t for p, t in parts.items() if t is not None})  # reported as foreign
            continue
        out[f"{layer}.attn.qkv.weight"] = torch.cat([parts["q.weight"], parts["k.weight"], parts["v.weight"]])
        if family in _BEIT_ATTENTION:
            for p, name in (("q.bias", "q_bias"), ("v.bias", "v_bias")):
                if parts[p] is not None:
                    out[f"{layer}.attn.{name}"] = parts[p]
            if parts["k.bias"] is not None:
                out[f"{layer}.attn.k.bias"] = parts["k.bias"]
        elif all(parts[p] is not None for p in ("q.bias", "k.bias", "v.bias")):
            out[f"{layer}.attn.qkv.bias"] = torch.cat([parts["q.bias"], parts["k.bias"], parts["v.bias"]])
        else:
            out.update({f"{layer}.attn.{p}": parts[p] for p in ("q.bias", "k.bias", "v.bias") if parts[p] is not None})
    return out


def _read_weights(folder: Path, filename: str) -> dict[str, torch.Tensor]:
    if not filename.endswith(".index.json"):
        return read_state_dict(folder / filename)
    index = _read_json(folder / filename)
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index.get("weight_map", {}).values())):
        state.update(read_state_dict(folder / shard))
    return state


@dataclass
class HFModel:
    """A transformers folder loaded: its card, which side of a bundle it fills, the model and its weights file."""

    card: ModelCard
    architecture: str         # the transformers class, e.g. ViTMAEForPreTraining
    role: str                 # 'mim' or 'classifier'
    model: nn.Module
    file: dict[str, str]      # {"path", "sha256"}


def load_hf_weights(model: nn.Module, folder: PathLike, family: str, filename: Optional[str] = None) -> Path:
    """Load a transformers folder's weights into `model` (of `family`), renamed to official names, strictly."""
    folder = Path(folder)
    filename = filename or find_weights(folder)
    state = hf_to_official(_read_weights(folder, filename), family)
    apply_state_dict(model, state, source=str(folder / filename), hint=getattr(model, "checkpoint_hint", None))
    return folder / filename


def load_hf_folder(folder: PathLike, card: Optional[ModelCard] = None) -> HFModel:
    """The folder's model, strictly loaded: a MIM model (ViTMAE, BEiT MIM) or a classifier (BEiT, ViT)."""
    folder = Path(folder)
    card = card or hf_card(folder)
    architecture = hf_architecture(folder)
    if card.mim_sources:
        role, family, arch, source = "mim", card.family, card.arch, card.mim_sources[0]
    else:
        role, family, arch, source = "classifier", card.classifier_family, card.classifier_arch, \
            card.classifier_sources[0]
    model = build_for_weights(family, **with_stats(arch, card.preprocessing))
    path = load_hf_weights(model, folder, family, source.filename)
    return HFModel(card, architecture, role, model.eval(), {"path": str(path), "sha256": sha256sum(path)})
