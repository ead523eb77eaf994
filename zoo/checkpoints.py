"""Checkpoint files: read safely (weights_only / safetensors), map keys strictly, write fp16 safetensors.

Official files (`{'model': state_dict}`), bare state dicts and safetensors all load through
`load_checkpoint`; any key that is missing or foreign raises `CheckpointError` listing them.
"""
from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Union

import torch
import torch.nn as nn

from .download import ChecksumError, DownloadError, sha256_of
from .download import download as download_url
from .fileio import atomic_path, partial_path

PathLike = Union[str, os.PathLike]

# Buffers that a model derives from its architecture; a file may carry them or not.
DERIVED_KEY_SUFFIXES = ("relative_position_index",)
_WRAPPER_KEYS = ("model", "state_dict", "module", "model_state")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used as it is: unreadable, unsafe, or not matching the model."""


sha256sum = sha256_of  # the hash an entry records for every checkpoint file


def _file_format(path: Path) -> str:
    """What the bytes of a checkpoint are, whatever its name says: 'safetensors', 'zip' (torch.save), 'pickle'
    (legacy torch.save), 'empty' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30):
        return "safetensors"
    return "unknown"


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, never executing code: safetensors, or torch.load(weights_only=True).

    The format is read from the file's bytes, so a safetensors file named `.pth` loads too; an empty, truncated or
    code-carrying file is refused with one line saying which."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    kind = _file_format(path)
    if kind == "empty":
        raise CheckpointError(f"{path}: empty file (0 bytes); download it again")
    if kind == "safetensors" or (kind == "unknown" and path.suffix == ".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({str(exc).splitlines()[0][:120]}); "
                                  f"download it again") from None
    if kind == "unknown":
        raise CheckpointError(f"{path}: not a checkpoint mimbench can read (neither safetensors nor a torch.save "
                              f"file); download it again")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; errors are reported below
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused, {_unpickling_reason(str(exc))}; mimbench loads tensors only "
                              f"(weights_only) and never runs a checkpoint's code") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160] or type(exc).__name__
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({first})") from None
    return _unwrap(obj, path)


def _unpickling_reason(message: str) -> str:
    """What torch's weights_only unpickler refused (e.g. 'it would call posix.system'), not its generic preamble."""
    import re
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return f"it would call {found.group(1)} when unpickled"
    tail = message.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in message else message
    lines = [line.strip() for line in tail.splitlines() if line.strip() and "PyTorch 2.6" not in line]
    return (lines[0][:120] if lines else "it holds objects other than tensors")


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(obj):
            return dict(tensors)
    raise CheckpointError(f"{path}: no state dict found (expected tensors, or a dict with one of "
                          f"{', '.join(_WRAPPER_KEYS)})")


def _is_derived(key: str) -> bool:
    return key.endswith(DERIVED_KEY_SUFFIXES)


def _fmt(keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def apply_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint",
                     hint: Optional[Callable[[set, set], Optional[str]]] = None) -> None:
    """Load `state` into `model` strictly: every key present, none foreign, every shape equal."""
    expected = model.state_dict()
    missing = {k for k in expected if k not in state and not _is_derived(k)}
    foreign = {k for k in state if k not in expected and not _is_derived(k)}
    if missing or foreign:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_fmt(missing)}")
        if foreign:
            parts.append(f"foreign {len(foreign)} key(s): {_fmt(foreign)}")
        extra = hint(missing, foreign) if hint else None
        raise CheckpointError(f"{source} does not match the {type(model).__name__}: " + "; ".join(parts)
                              + (f". {extra}" if extra else ""))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape) and not _is_derived(k)]
    if wrong:
        raise CheckpointError(f"{source}: shape mismatch for {len(wrong)} key(s): {'; '.join(wrong[:6])}")
    to_load = {k: state[k].to(expected[k].dtype) for k in expected if k in state and not _is_derived(k)}
    model.load_state_dict(to_load, strict=False)


def load_checkpoint(model: nn.Module, path: PathLike,
                    key_map: Optional[Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]] = None
                    ) -> nn.Module:
    """Load an official-format or mimbench checkpoint into `model`, strictly; raises CheckpointError."""
    state = read_state_dict(path)
    if key_map is not None:
        state = key_map(state)
    apply_state_dict(model, state, source=str(path), hint=getattr(model, "checkpoint_hint", None))
    return model


def save_weights(model_or_state: Union[nn.Module, Mapping[str, torch.Tensor]], path: PathLike,
                 dtype: torch.dtype = torch.float16, metadata: Optional[dict[str, str]] = None) -> str:
    """Write weights as safetensors (fp16 by default, floating tensors only cast); returns the sha256."""
    from safetensors.torch import save_file
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu")
        out[k] = (v.to(dtype) if v.is_floating_point() else v).contiguous()
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=metadata)
        _sort_metadata(tmp)
    return sha256sum(path)


def _sort_metadata(path: Path) -> None:
    """Sort the `__metadata__` keys of a safetensors file's header in place (see `sorted_metadata_header`)."""
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = sorted_metadata_header(f.read(size))
        f.seek(8)
        f.write(header)


def sorted_metadata_header(header: bytes) -> bytes:
    """A safetensors JSON header with its `__metadata__` keys sorted, at the same length, so the same tensors and
    metadata give the same bytes (and sha256): safetensors 0.8 writes them in a random order (its issue #584).
    The header is JSON padded with spaces, so reordering never moves the tensor data."""
    parsed = json.loads(header)
    if not parsed.get("__metadata__"):
        return header
    parsed["__metadata__"] = dict(sorted(parsed["__metadata__"].items()))
    text = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > len(header):  # another JSON spelling than the library's: keep its header
        return header
    return text.ljust(len(header), b" ")


def sorted_metadata_bytes(data: bytes) -> bytes:
    """`safetensors.torch.save` output with its `__metadata__` keys sorted (see `sorted_metadata_header`)."""
    size = int.from_bytes(data[:8], "little")
    return data[:8] + sorted_metadata_header(data[8:8 + size]) + data[8 + size:]


def check_finite(model: nn.Module, source: str = "checkpoint") -> None:
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source}: non-finite values in {len(bad)} tensor(s): {_fmt(bad)}")


class MissingCheckpointError(CheckpointError):
    """A checkpoint that is neither in the cache nor downloadable now; the message says how to get it."""


def checkpoint_cache() -> Path:
    from .data import cache_dir
    return cache_dir() / "checkpoints"


def offline_reason() -> Optional[str]:
    """Why no download may be tried now (MIMBENCH_OFFLINE or HF_HUB_OFFLINE set), else None; read at call time."""
    for var in ("MIMBENCH_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no", "off"):
            return f"offline: {var}={os.environ[var]}"
    return None


def fetch(source, cache: Optional[Path] = None, download: bool = True) -> Path:
    """Path of `source` in the cache, downloading it when missing (resumable, progress bar, sha256-checked).

    Only a whole, checked file ever appears at the cache path; otherwise MissingCheckpointError says in one line
    what failed, the URL and where to put the file by hand.
    """
    cache = cache or checkpoint_cache()
    target = cache / source.filename
    if target.is_file():
        return target
    if source.url is None:
        where = f" from {source.page}" if source.page else ""
        raise MissingCheckpointError(f"{source.filename} is not downloadable directly: get it{where} and put it at "
                                     f"{target} (or pass its path with --checkpoint/--classifier-checkpoint)")
    by_hand = f"download {source.url} and put it at {target}"
    reason = offline_reason() if download else "not the first source: only looked up in the cache"
    if reason is not None:
        raise MissingCheckpointError(f"{source.filename} is not in the cache ({reason}): {by_hand}")
    try:
        download_url(source.url, target, sha256=source.sha256)
    except DownloadError as exc:
        resume = " (run again to resume the partial download)" if partial_path(target).is_file() else ""
        raise MissingCheckpointError(f"{source.filename}: download failed ({exc}){resume}; or {by_hand}") from None
    except ChecksumError as exc:
        raise CheckpointError(f"{source.filename} from {source.url}: {exc}") from None
    return target

