"""Headless Chromium for the HTML tests: find the browser, take a screenshot, read the DOM after scripts ran.

Outside CI a machine without Chromium skips the browser test with the reason below; in CI (`CI` set, as .ci/run
runs) or with MIMBENCH_REQUIRE_CHROMIUM=1 (which `make test` sets when it could install Chromium) a missing
browser is a failure. By hand: `python -m tests.browser leaderboards/index.html shot.png`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--virtual-time-budget=5000"]
MISSING = ("headless Chromium not found (install Debian's `chromium`: `apt-get install chromium`, or set "
           "MIMBENCH_CHROMIUM to the binary); required in CI and under `make test` as root")


def find_chromium() -> Optional[str]:
    explicit = os.environ.get("MIMBENCH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((p for p in map(shutil.which, _CANDIDATES) if p), None)


def chromium_required() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false") or os.environ.get("MIMBENCH_REQUIRE_CHROMIUM") == "1"


def _run(binary: str, args: list[str], timeout: int = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="mimbench-chromium-") as profile:
        return subprocess.run([binary, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def screenshot(binary: str, page: Path, png: Path, width: int = 1300, height: int = 1800) -> Path:
    """Render `page` (a file) at width x height and save the PNG; raises if Chromium writes nothing."""
    proc = _run(binary, [f"--screenshot={png}", f"--window-size={width},{height}", Path(page).resolve().as_uri()])
    if not Path(png).is_file() or Path(png).stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return Path(png)


def dump_dom(binary: str, page: Path) -> str:
    """The page's DOM after its scripts ran (and after the load event: images decoded)."""
    proc = _run(binary, ["--dump-dom", Path(page).resolve().as_uri()])
    if proc.returncode != 0 or "<body" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.browser PAGE.html OUT.png")
    binary = find_chromium()
    if binary is None:
        sys.exit(MISSING)
    print(screenshot(binary, Path(sys.argv[1]), Path(sys.argv[2])))
