"""`load_model`: a registry name, a trainer folder or a Hugging Face folder -> a ready bundle of models."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch.nn as nn

from .checkpoints import CheckpointError, MissingCheckpointError, PathLike, fetch, load_checkpoint, sha256sum
from .models import build_for_weights
from .registry import CheckpointSource, ModelCard, card_from_folder, classifier_hint, encoder_only_hint, get_card


@dataclass
class ModelBundle:
    """What a run needs of one model: its card, the MIM model and the classifier (None when absent)."""

    card: ModelCard
    mim: Optional[nn.Module]
    classifier: Optional[nn.Module]
    files: dict[str, dict[str, str]] = field(default_factory=dict)   # role -> {"path", "sha256"}
    missing: dict[str, str] = field(default_factory=dict)            # role -> how to get the file

    def require(self, role: str) -> nn.Module:
        """The 'mim' or 'classifier' model, or MissingCheckpointError with the message of how to get it."""
        model = self.mim if role == "mim" else self.classifier
        if model is None:
            raise MissingCheckpointError(self.missing.get(role, f"{self.card.name} has no {role} model"))
        return model

    def to(self, device) -> "ModelBundle":
        for m in (self.mim, self.classifier):
            if m is not None:
                m.to(device)
        return self


def _stats(card: ModelCard, arch: dict[str, Any]) -> dict[str, Any]:
    arch = dict(arch)
    for key in ("mean", "std"):
        if key not in arch and key in card.preprocessing:
            arch[key] = card.preprocessing[key]
    return arch


def _resolve(card: ModelCard, role: str, sources: list[CheckpointSource], explicit: Optional[PathLike]
             ) -> tuple[Optional[Path], Optional[CheckpointSource], Optional[str]]:
    """(path, source, None) when the file is at hand, else (None, None, message)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise MissingCheckpointError(f"--{'checkpoint' if role == 'mim' else 'classifier-checkpoint'}: "
                                         f"no such file: {path}")
        match = next((s for s in sources if s.filename == path.name), None)
        return path, match, None
    if not sources:
        return None, None, f"{card.name} has no published {role} checkpoint"
    if card.local_dir is not None:
        path = Path(card.local_dir) / sources[0].filename
        if path.is_file():
            return path, sources[0], None
        return None, None, f"{card.name}: {path} is missing"
    messages = []
    for i, src in enumerate(sources):
        try:
            return fetch(src, download=(i == 0)), src, None
        except MissingCheckpointError as exc:
            messages.append(str(exc))
    return None, None, messages[0]


def _load_part(card: ModelCard, role: str, explicit: Optional[PathLike]):
    sources = card.mim_sources if role == "mim" else card.classifier_sources
    path, source, message = _resolve(card, role, sources, explicit)
    if path is None:
        return None, None, message
    if role == "mim":
        arch = _stats(card, card.arch)
        if source is not None:
            arch.update(dict(source.arch_overrides))
        model = build_for_weights(card.family, **arch)
        model.checkpoint_hint = encoder_only_hint(card)
    else:
        if card.classifier_arch is None:
            return None, None, f"{card.name} has no classifier architecture"
        model = build_for_weights(card.classifier_family, **_stats(card, card.classifier_arch))
        model.checkpoint_hint = classifier_hint(card)
    load_checkpoint(model, path)
    digest = sha256sum(path)
    # A hash belongs to a source, not to a file name: a file the user names is theirs, whatever it is called
    # (the trainer writes `mim.safetensors`, as every shipped card names its file); the entry records its hash.
    if explicit is None and source is not None and source.sha256 and source.sha256 != digest:
        raise CheckpointError(f"{path}: sha256 {digest[:16]}... does not match the card's {source.sha256[:16]}...")
    return model.eval(), {"path": str(path), "sha256": digest}, None


def load_model(name_or_dir: Union[str, PathLike], checkpoint: Optional[PathLike] = None,
               classifier_checkpoint: Optional[PathLike] = None) -> ModelBundle:
    """Load a registry model or a trainer folder; parts without a file are None (see `bundle.missing`)."""
    path = Path(name_or_dir)
    if path.is_dir():
        if (path / "card.json").is_file():
            card = card_from_folder(path)
        elif (path / "config.json").is_file():
            from .hf import load_hf_folder
            return load_hf_folder(path)
        else:
            raise CheckpointError(f"{path}: not a model folder (no card.json from the trainer, no config.json "
                                  f"from transformers)")
    else:
        card = get_card(str(name_or_dir))
    bundle = ModelBundle(card, None, None)
    for role, explicit in (("mim", checkpoint), ("classifier", classifier_checkpoint)):
        model, info, message = _load_part(card, role, explicit)
        setattr(bundle, role, model)
        if info:
            bundle.files[role] = info
        if message:
            bundle.missing[role] = message
    if bundle.mim is None and bundle.classifier is None:
        raise MissingCheckpointError(bundle.missing.get("mim") or f"{card.name}: no weights found")
    return bundle
