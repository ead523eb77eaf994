"""`load_model`: a registry name, a trainer folder, a transformers folder or a Hub model -> a ready bundle of models.

A registry part's weights come from, in order: a file already in the cache, the same weights already in the
Hugging Face cache (the card's Hub source), a download of the authors' file, a download from the Hub.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn

from .checkpoints import (
    CheckpointError,
    MissingCheckpointError,
    PathLike,
    checkpoint_cache,
    fetch,
    load_checkpoint,
    offline_reason,
    sha256sum,
)
from .hf import HF_ARCHITECTURES, HF_CLASSIFIER_ARCHITECTURES, HFModel, hf_architecture, load_hf_folder, load_hf_weights
from .hub import HubRef, hub_cache_dir, is_hub_ref, parse_hub_ref, snapshot
from .models import build_for_weights
from .registry import CheckpointSource, ModelCard, card_from_folder, classifier_hint, encoder_only_hint, get_card, with_stats

ModelRef = Union[str, PathLike]


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


@dataclass(frozen=True)
class _Found:
    """Where a part's weights are: a checkpoint file, or a transformers snapshot folder for a Hub source."""

    path: Path
    source: Optional[CheckpointSource]

    @property
    def from_hub(self) -> bool:
        return self.source is not None and self.source.hub is not None


def _resolve(card: ModelCard, role: str, sources: list[CheckpointSource], explicit: Optional[PathLike]
             ) -> tuple[Optional[_Found], Optional[str]]:
    """(found, None) when the weights are at hand (downloading them if need be), else (None, message)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise MissingCheckpointError(f"--{'checkpoint' if role == 'mim' else 'classifier-checkpoint'}: "
                                         f"no such file: {path}")
        return _Found(path, next((s for s in sources if s.filename == path.name and s.hub is None), None)), None
    if not sources:
        return None, f"{card.name} has no published {role} checkpoint"
    if card.local_dir is not None:
        path = Path(card.local_dir) / sources[0].filename
        return (_Found(path, sources[0]), None) if path.is_file() else (None, f"{card.name}: {path} is missing")
    files = [s for s in sources if s.hub is None]
    hubs = [s for s in sources if s.hub is not None]
    cached = next((s for s in files if (checkpoint_cache() / s.filename).is_file()), None)
    if cached is not None:
        return _Found(checkpoint_cache() / cached.filename, cached), None
    for src in hubs:
        try:
            return _Found(snapshot(HubRef(src.hub, src.revision), offline=True), src), None
        except MissingCheckpointError:
            continue
    messages = []
    if files:
        try:
            return _Found(fetch(files[0]), files[0]), None
        except MissingCheckpointError as exc:
            messages.append(str(exc))
    if hubs and offline_reason() is not None:
        messages.append(f"or place {' or '.join(s.hub_ref for s in hubs)} in the Hugging Face cache "
                        f"{hub_cache_dir()} (run once online)")
    elif hubs:
        for src in hubs:
            try:
                return _Found(snapshot(HubRef(src.hub, src.revision)), src), None
            except CheckpointError as exc:
                messages.append(f"the Hub: {exc}")
    return None, "; ".join(messages)


def _load_hub_source(model: nn.Module, found: _Found, family: str, what: str) -> Path:
    """Load a card's Hub source (a transformers snapshot) into `model`, after checking it is the right kind."""
    name = hf_architecture(found.path)
    if HF_ARCHITECTURES[name] != family:
        raise CheckpointError(f"{found.source.hub_ref}: a {name} repository; {what} is a {family} model")
    return load_hf_weights(model, found.path, family)


def _load_part(card: ModelCard, role: str, explicit: Optional[PathLike]):
    sources = card.mim_sources if role == "mim" else card.classifier_sources
    found, message = _resolve(card, role, sources, explicit)
    if found is None:
        return None, None, message
    if role == "mim":
        family, arch, hint = card.family, with_stats(card.arch, card.preprocessing), encoder_only_hint(card)
        if found.source is not None:
            arch.update(dict(found.source.arch_overrides))
    else:
        if card.classifier_arch is None:
            return None, None, f"{card.name} has no classifier architecture"
        family, hint = card.classifier_family, classifier_hint(card)
        arch = with_stats(card.classifier_arch, card.preprocessing)
    model = build_for_weights(family, **arch)
    model.checkpoint_hint = hint
    if found.from_hub:
        path = _load_hub_source(model, found, family, f"{card.name}'s {role}")
    else:
        path = found.path
        load_checkpoint(model, path)
    digest = sha256sum(path)
    # A hash belongs to a source, not to a file name: a file the user names is theirs, whatever it is called
    # (the trainer writes `mim.safetensors`, as every shipped card names its file); the entry records its hash.
    source = found.source
    if explicit is None and source is not None and source.sha256 and source.sha256 != digest:
        raise CheckpointError(f"{path}: sha256 {digest[:16]}... does not match the card's {source.sha256[:16]}...")
    return model.eval(), {"path": str(path), "sha256": digest}, None


def _hub_card(loaded: HFModel, ref: HubRef, folder: Path) -> ModelCard:
    """A transformers folder's card as loaded from the Hub: named ORG--NAME, its sources pinned to the commit."""
    card, pin = loaded.card, dict(page=ref.page, hub=ref.repo_id, revision=folder.name)
    return replace(card, name=ref.label, local_dir=None,
                   description=f"{loaded.architecture} from the Hugging Face Hub: {ref.repo_id}@{folder.name}",
                   mim_sources=[replace(s, **pin) for s in card.mim_sources],
                   classifier_sources=[replace(s, **pin) for s in card.classifier_sources])


def _transformers_model(name_or_dir: ModelRef) -> HFModel:
    """A Hub reference (hf-hub:ORG/NAME[@REV]) or a transformers folder, loaded with its card."""
    if is_hub_ref(name_or_dir):
        ref = parse_hub_ref(str(name_or_dir))
        folder = snapshot(ref)
        loaded = load_hf_folder(folder)
        loaded.card = _hub_card(loaded, ref, folder)
        return loaded
    return load_hf_folder(Path(name_or_dir))


def _is_transformers(name_or_dir: ModelRef) -> bool:
    if is_hub_ref(name_or_dir):
        return True
    path = Path(name_or_dir)
    return path.is_dir() and not (path / "card.json").is_file() and (path / "config.json").is_file()


def _load_transformers(name_or_dir: ModelRef, checkpoint: Optional[PathLike],
                       classifier_checkpoint: Optional[PathLike]) -> ModelBundle:
    if checkpoint is not None or classifier_checkpoint is not None:
        raise CheckpointError(f"{name_or_dir}: a transformers model brings its own weights; --checkpoint and "
                              f"--classifier-checkpoint apply to registry models and trainer folders")
    loaded = _transformers_model(name_or_dir)
    bundle = ModelBundle(loaded.card, None, None)
    setattr(bundle, loaded.role, loaded.model)
    bundle.files[loaded.role] = loaded.file
    kind = f"a Hugging Face {loaded.architecture} {'model' if is_hub_ref(name_or_dir) else 'folder'}"
    if loaded.role == "mim":
        bundle.missing["classifier"] = (f"{name_or_dir}: {kind} holds no classifier (pair one with --classifier "
                                        f"hf-hub:ORG/NAME or a transformers classifier folder)")
    else:
        bundle.missing["mim"] = f"{name_or_dir}: {kind} holds no MIM model (masked image modelling)"
    return bundle


def _pair_classifier(bundle: ModelBundle, classifier: ModelRef) -> None:
    """Make a transformers classifier (Hub or folder) the bundle's classifier; the card records it."""
    loaded = _transformers_model(classifier)
    if loaded.role != "classifier":
        raise CheckpointError(f"--classifier {classifier}: a {loaded.architecture} model, not a classifier "
                              f"({' or '.join(HF_CLASSIFIER_ARCHITECTURES)})")
    c = loaded.card
    bundle.card = replace(bundle.card, classifier_family=c.classifier_family,
                          classifier_arch=with_stats(c.classifier_arch, c.preprocessing),
                          classifier_sources=list(c.classifier_sources), expected_top1=None)
    bundle.classifier = loaded.model
    bundle.files["classifier"] = loaded.file
    bundle.missing.pop("classifier", None)


def load_model(name_or_dir: ModelRef, checkpoint: Optional[PathLike] = None,
               classifier_checkpoint: Optional[PathLike] = None,
               classifier: Optional[ModelRef] = None) -> ModelBundle:
    """Load a registry model, a trainer folder, a transformers folder or `hf-hub:ORG/NAME[@REVISION]`.

    Parts without weights are None (see `bundle.missing`). `classifier` (a Hub reference or a transformers
    folder of BeitForImageClassification / ViTForImageClassification) replaces the bundle's classifier.
    """
    if classifier is not None and classifier_checkpoint is not None:
        raise CheckpointError("give the classifier as a transformers model (--classifier) or as a checkpoint file "
                              "(--classifier-checkpoint), not both")
    if _is_transformers(name_or_dir):
        bundle = _load_transformers(name_or_dir, checkpoint, classifier_checkpoint)
    else:
        path = Path(name_or_dir)
        if path.is_dir():
            if not (path / "card.json").is_file():
                raise CheckpointError(f"{path}: not a model folder (no card.json from the trainer, no config.json "
                                      f"from transformers)")
            try:
                card = card_from_folder(path)
            except ValueError as exc:
                raise CheckpointError(str(exc)) from None
        else:
            card = get_card(str(name_or_dir))
        bundle = ModelBundle(card, None, None)
        roles = (("mim", checkpoint), ("classifier", classifier_checkpoint))
        for role, explicit in roles if classifier is None else roles[:1]:
            model, info, message = _load_part(card, role, explicit)
            setattr(bundle, role, model)
            if info:
                bundle.files[role] = info
            if message:
                bundle.missing[role] = message
    if classifier is not None:
        _pair_classifier(bundle, classifier)
    if bundle.mim is None and bundle.classifier is None:
        raise MissingCheckpointError(bundle.missing.get("mim") or f"{bundle.card.name}: no weights found")
    return bundle
