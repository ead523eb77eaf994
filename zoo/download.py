"""Plain-URL downloads into a cache: resumable (HTTP Range), with a progress bar and a sha256 check.

The bytes grow in a hidden `.NAME.part` beside the target (`fileio.partial_path`); only a complete file whose
sha256 matches (when one is known) is renamed onto the target (`fileio.promote`), so the cache never holds half a
file under its final name. A killed or broken download leaves the partial file, which the next call continues
where the server honours ranges (with `If-Range` on the ETag or Last-Modified the first response gave, so a file
changed on the server meanwhile restarts instead of being spliced) and restarts where it does not. A lock file
beside the target keeps two processes from growing the same partial file. (Hugging Face Hub files go through
huggingface_hub's own downloader: zoo.hub.)
"""
from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Union

from filelock import FileLock
from tqdm.auto import tqdm

from .fileio import atomic_write_text, partial_path, promote

CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds without a byte before a connection counts as broken
_USER_AGENT = "mimbench-downloader"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(OSError):
    """A download that could not complete now (network, server, interruption); a partial file is kept to resume."""


class ChecksumError(ValueError):
    """A complete download whose sha256 is not the expected one; it was removed."""


def sha256_of(path: Union[str, Path], chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def lock_path(target: Path) -> Path:
    """The hidden lock file that serialises downloads of `target`."""
    return target.with_name(f".{target.name}.lock")


def _validator_path(part: Path) -> Path:
    """Beside the partial file: the ETag or Last-Modified of the response it started from (for If-Range)."""
    return part.with_name(part.name + ".validator")


def _discard(part: Path) -> None:
    for path in (part, _validator_path(part)):
        if path.exists():
            path.unlink()


def download(url: str, target: Union[str, Path], sha256: Optional[str] = None, progress: bool = True,
             timeout: float = TIMEOUT) -> Path:
    """Download `url` to `target`, resuming a partial file left by an earlier call; returns `target`.

    Raises DownloadError (partial file kept) or ChecksumError (download removed); `target` appears only whole.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(target))):
        if target.is_file():  # another process finished it while we waited for the lock
            return target
        part = partial_path(target)
        _grow(url, part, target.name, progress, timeout)
        digest = sha256_of(part)
        if sha256 and digest != sha256.lower():
            _discard(part)
            raise ChecksumError(f"sha256 {digest} of the download does not match the expected {sha256}; "
                                f"the download was removed")
        promote(part, target)
        _discard(part)  # the validator
    return target


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).splitlines()[0][:160] if str(reason) else ""
    return text or type(exc).__name__


def _open(url: str, start: int, validator: Optional[str], timeout: float):
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
        if validator:
            headers["If-Range"] = validator
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _grow(url: str, part: Path, name: str, progress: bool, timeout: float, restarted: bool = False) -> None:
    """Bring `part` to the whole content of `url`, continuing from its current size when the server allows."""
    have = part.stat().st_size if part.is_file() else 0
    vpath = _validator_path(part)
    validator = vpath.read_text().strip() if have and vpath.is_file() else None
    try:
        resp = _open(url, have, validator, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and not restarted:  # range beyond the end: complete already, or a stale file
            m = _CONTENT_RANGE.match(exc.headers.get("Content-Range", "").replace("*", "0-0", 1))
            if m and int(m.group(3)) == have:
                return
            _discard(part)
            return _grow(url, part, name, progress, timeout, restarted=True)
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DownloadError(_reason(exc)) from None
    with resp:
        if have and resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:  # another range than asked for: start over
                resp.close()
                _discard(part)
                if restarted:
                    raise DownloadError("the server answered a range request with another range")
                return _grow(url, part, name, progress, timeout, restarted=True)
            mode = "ab"
        else:  # a first request, or 200 to a range request (no range support, or the file changed): from zero
            have, mode = 0, "wb"
            fresh = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
            if fresh and not fresh.startswith("W/"):  # weak ETags may not be used with If-Range
                atomic_write_text(vpath, fresh)
            elif vpath.exists():
                vpath.unlink()
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        got = have
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                   disable=not progress, leave=False)
        try:
            with open(part, mode) as f:
                while True:
                    block = resp.read1(CHUNK)  # what has arrived, so a kill loses little
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            raise DownloadError(f"interrupted after {got} of {total if total is not None else '?'} bytes "
                                f"({_reason(exc)})") from None
        finally:
            bar.close()
    if total is not None and got < total:
        raise DownloadError(f"interrupted after {got} of {total} bytes")
