"""Models on the Hugging Face Hub: `hf-hub:ORG/NAME[@REVISION]` to a local transformers folder, via huggingface_hub.

Files go through huggingface_hub's downloader and cache (`models--ORG--NAME/snapshots/<commit>/`, `refs/<branch>`),
with its progress bars; only the files mimbench loads are fetched (config.json, preprocessor_config.json, and one
set of weights: model.safetensors, else pytorch_model.bin, or their shards). Offline, a snapshot is served from
the cache. The cache folder and the offline switch are read from the environment at each call (huggingface_hub
reads its own at import), in huggingface_hub's order: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub,
$XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub; offline when HF_HUB_OFFLINE or MIMBENCH_OFFLINE is set.
Every failure is a one-line `CheckpointError` (`MissingCheckpointError` for what is not at hand).
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.utils import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .checkpoints import CheckpointError, MissingCheckpointError, offline_reason
from .registry import ModelCard

HUB_PREFIX = "hf-hub:"
_META_FILES = ["config.json", "preprocessor_config.json", "*.index.json"]
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HubRef:
    """A model repository on the Hub and the revision asked for (None: the default branch, `main`)."""

    repo_id: str
    revision: Optional[str] = None

    def __str__(self) -> str:
        return HUB_PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")

    @property
    def label(self) -> str:
        """A board label for the repository: ORG--NAME (as the Hub's cache names it)."""
        return self.repo_id.replace("/", "--")

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


def is_hub_ref(text: object) -> bool:
    return isinstance(text, str) and text.startswith(HUB_PREFIX)


def parse_hub_ref(text: str) -> HubRef:
    """`hf-hub:ORG/NAME[@REVISION]` -> HubRef; CheckpointError for anything else."""
    if not is_hub_ref(text):
        raise CheckpointError(f"{text}: not a Hub reference (expected {HUB_PREFIX}ORG/NAME[@REVISION])")
    body = text[len(HUB_PREFIX):]
    repo, sep, revision = body.partition("@")
    if not _NAME.match(repo) or (sep and not revision.strip()):
        raise CheckpointError(f"{text}: expected {HUB_PREFIX}ORG/NAME[@REVISION] (e.g. {HUB_PREFIX}facebook/"
                              f"vit-mae-base or {HUB_PREFIX}facebook/vit-mae-base@<commit hash>)")
    return HubRef(repo, revision or None)


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder, from the environment now (see the module's docstring for the order)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def repo_cache_dir(ref: HubRef, cache: Optional[Path] = None) -> Path:
    """Where huggingface_hub keeps the repository: models--ORG--NAME."""
    return (cache or hub_cache_dir()) / ("models--" + ref.repo_id.replace("/", "--"))


def cached_revisions(ref: HubRef, cache: Optional[Path] = None) -> dict[str, str]:
    """Branch or tag -> commit for the refs of the repository in the cache, plus each cached commit -> itself."""
    folder = repo_cache_dir(ref, cache)
    found: dict[str, str] = {}
    refs = folder / "refs"
    if refs.is_dir():
        for path in sorted(p for p in refs.rglob("*") if p.is_file()):
            found[path.relative_to(refs).as_posix()] = path.read_text().strip()
    snapshots = folder / "snapshots"
    if snapshots.is_dir():
        found.update({p.name: p.name for p in sorted(snapshots.iterdir()) if p.is_dir()})
    return found


def _unreachable(timeout: float = 5.0) -> Optional[str]:
    """Why the Hub cannot be reached now (no route, no name resolution), else None; one quick try.

    huggingface_hub retries a failed connection with backoff for about 20 s, warning at each try; a machine that is
    offline without saying so gets one line instead, and the cache still serves what it holds.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"the Hub is unreachable: {_one_line(getattr(exc, 'reason', exc))}"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else "") or type(exc).__name__


def _offline_message(ref: HubRef, cache: Path, reason: str) -> str:
    folder = repo_cache_dir(ref, cache)
    if not folder.is_dir():
        return (f"{ref}: not in the Hugging Face cache {cache} ({reason}): run once online to download it, or copy "
                f"a snapshot there ({folder.name}/snapshots/<commit>/ with refs/main holding <commit>)")
    revision = ref.revision or "main"
    known = cached_revisions(ref, cache)
    named = {k: v for k, v in known.items() if k != v}
    have = ", ".join([f"{k} -> {v[:12]}" for k, v in named.items()]
                     + [k[:12] for k, v in known.items() if k == v and v not in named.values()]) or "none"
    return (f"{ref}: revision {revision} is not in the Hugging Face cache {folder} ({reason}; cached revisions: "
            f"{have}): run once online, or pass one of those with @REVISION")


def _online_error(ref: HubRef, cache: Path, exc: BaseException) -> CheckpointError:
    if isinstance(exc, RevisionNotFoundError):
        return CheckpointError(f"{ref}: revision {ref.revision or 'main'} not found on the Hub")
    if isinstance(exc, GatedRepoError):
        return CheckpointError(f"{ref}: a gated repository: accept its terms on {ref.page} and log in "
                               f"(`hf auth login` or HF_TOKEN)")
    if isinstance(exc, RepositoryNotFoundError):
        return CheckpointError(f"{ref}: no such model repository on the Hub (or a private one: log in with "
                               f"`hf auth login` or HF_TOKEN)")
    if isinstance(exc, LocalEntryNotFoundError):  # the Hub is unreachable and the cache does not have it
        return MissingCheckpointError(_offline_message(ref, cache, f"the Hub is unreachable: {_one_line(exc)}"))
    return MissingCheckpointError(f"{ref}: download failed ({type(exc).__name__}: {_one_line(exc)}); run again "
                                  f"(huggingface_hub resumes), or place its snapshot in {repo_cache_dir(ref, cache)}")


def snapshot(ref: HubRef, offline: Optional[bool] = None) -> Path:
    """A local folder with the repository's config.json, preprocessor_config.json and weights at `ref.revision`.

    Downloads what is missing into the Hugging Face cache unless offline (`offline=None`: from the environment).
    """
    cache = hub_cache_dir()
    reason = offline_reason() if offline is None else ("offline" if offline else None)
    if reason is None:
        reason = _unreachable()
    local = reason is not None
    common = dict(cache_dir=str(cache), local_files_only=local)
    try:
        folder = Path(snapshot_download(ref.repo_id, revision=ref.revision, allow_patterns=_META_FILES, **common))
        commit = folder.name if _COMMIT.match(folder.name) else ref.revision
        _weights(ref, folder, commit, cache, common)
    except CheckpointError:
        raise
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise _online_error(ref, cache, exc) from None
    except LocalEntryNotFoundError as exc:
        if local:
            raise MissingCheckpointError(_offline_message(ref, cache, reason)) from None
        raise _online_error(ref, cache, exc) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise _online_error(ref, cache, exc) from None
    return folder


def _weights(ref: HubRef, folder: Path, commit: Optional[str], cache: Path, common: dict) -> None:
    """Bring one set of weights into the snapshot folder: sharded (by its index) or one file, safetensors first."""
    for index in _INDEXES:
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise CheckpointError(f"{ref}: unreadable {index} ({_one_line(exc)})") from None
            snapshot_download(ref.repo_id, revision=commit, allow_patterns=shards, **common)
            return
    for name in _WEIGHTS:
        if (folder / name).is_file():
            return
        try:
            hf_hub_download(ref.repo_id, name, revision=commit, **common)
            return
        except EntryNotFoundError as exc:  # not in the repository, or (offline) not in the cache: try the next
            if isinstance(exc, LocalEntryNotFoundError) and not common["local_files_only"]:
                raise  # online, yet neither the Hub nor the cache answered: not a missing file
    where = "in the cache" if common["local_files_only"] else "in the repository"
    raise MissingCheckpointError(f"{ref}: no weights ({' or '.join(_WEIGHTS)}) {where} at {folder}")


def is_cached(ref: HubRef, cache: Optional[Path] = None) -> bool:
    """Whether the cache holds the revision's snapshot with a config.json and weights (no network, no download)."""
    commit = cached_revisions(ref, cache).get(ref.revision or "main")
    folder = repo_cache_dir(ref, cache) / "snapshots" / (commit or "-")
    return commit is not None and (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in _WEIGHTS + _INDEXES)


def describe_hub_sources(card: ModelCard) -> str:
    """One `--list-models` clause: the card's Hub sources, their pins, whether cached, and which file they equal."""
    if card.local_dir is not None:
        return ""
    parts = []
    for role, sources in (("mim", card.mim_sources), ("classifier", card.classifier_sources)):
        for src in (s for s in sources if s.hub is not None):
            ref = HubRef(src.hub, src.revision)
            pin = src.revision[:12] if src.revision else "main (unpinned)"
            parts.append(f"hub {role}: {src.hub}@{pin}, {'cached' if is_cached(ref) else 'not cached'} ({src.note})")
    return "; ".join(parts) or "hub: none (no Hugging Face Hub repository holds these weights)"
