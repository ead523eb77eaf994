"""Plain-URL downloads: resumable, sha256-checked, and never a partial file at the cache path (local HTTP server)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import zoo
from zoo.checkpoints import fetch
from zoo.download import ChecksumError, DownloadError, download
from zoo.fileio import partial_path
from zoo.registry import CheckpointSource

from .helpers import REPO

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves DATA; honours Range (and If-Range on its ETag) when the server allows, cuts or throttles on demand."""

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv = self.server
        srv.requests.append(dict(self.headers))
        start, status = 0, 200
        rng = self.headers.get("Range")
        if srv.ranges and rng and self.headers.get("If-Range", srv.etag) == srv.etag:
            start, status = int(rng.split("=")[1].split("-")[0]), 206
        body = srv.data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", srv.etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(srv.data) - 1}/{len(srv.data)}")
        if srv.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if srv.cut_after is not None:  # promise the whole body, send part of it, hang up
            body, srv.cut_after = body[:srv.cut_after], None
        for i in range(0, len(body), 8192):
            self.wfile.write(body[i:i + 8192])
            self.wfile.flush()
            if srv.delay:
                time.sleep(srv.delay)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.data, srv.etag, srv.ranges, srv.cut_after, srv.delay, srv.requests = DATA, '"v1"', True, None, 0.0, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/ckpt.pth"
    yield srv
    srv.shutdown()
    srv.server_close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ranges", [True, False])
def test_a_broken_download_leaves_no_file_and_the_next_call_resumes_or_restarts(server, tmp_path, ranges):
    server.ranges = ranges
    server.cut_after = 100_000
    target = tmp_path / "cache" / "ckpt.pth"
    with pytest.raises(DownloadError, match="interrupted after 100000 of 300000 bytes"):
        download(server.url, target, sha256=SHA, progress=False)
    assert not target.exists() and partial_path(target).stat().st_size == 100_000
    assert download(server.url, target, sha256=SHA, progress=False) == target
    assert _sha(target) == SHA and not partial_path(target).exists()
    assert server.requests[-1].get("Range") == "bytes=100000-"  # asked to resume; a server without ranges sends all
    assert server.requests[-1].get("If-Range") == '"v1"'
    assert len(server.requests) == 2  # resumed (206) or restarted (200) in one request
    assert sorted(p.name for p in target.parent.iterdir()) == [".ckpt.pth.lock", "ckpt.pth"]


def test_a_file_changed_on_the_server_restarts_instead_of_splicing(server, tmp_path):
    server.cut_after = 100_000
    target = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError):
        download(server.url, target, progress=False)
    new = os.urandom(200_000)
    server.data, server.etag = new, '"v2"'
    download(server.url, target, progress=False)
    assert target.read_bytes() == new


def test_a_wrong_sha256_removes_the_download(server, tmp_path):
    target = tmp_path / "ckpt.pth"
    with pytest.raises(ChecksumError, match="does not match"):
        download(server.url, target, sha256="0" * 64, progress=False)
    assert not target.exists() and not partial_path(target).exists()


def test_killing_a_download_midway_leaves_no_file_at_the_cache_path(server, tmp_path):
    server.delay = 0.02  # ~0.7 s for the whole file: time to kill it halfway
    target = tmp_path / "cache" / "ckpt.pth"
    code = f"from zoo.download import download; download({server.url!r}, {str(target)!r}, progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    part = partial_path(target)
    deadline = time.monotonic() + 60
    while not (part.is_file() and part.stat().st_size >= 50_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and not target.exists()
    server.delay = 0.0
    download(server.url, target, sha256=SHA, progress=False)
    assert _sha(target) == SHA and server.requests[-1]["Range"] == f"bytes={kept}-"


def test_fetch_names_url_cache_path_and_how_to_place_the_file(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MIMBENCH_HOME", str(tmp_path))
    src = CheckpointSource("ckpt.pth", server.url, sha256=SHA)
    target = tmp_path / "checkpoints" / "ckpt.pth"
    monkeypatch.setenv("MIMBENCH_OFFLINE", "1")
    with pytest.raises(zoo.MissingCheckpointError) as info:
        fetch(src)
    msg = str(info.value)
    assert "\n" not in msg and server.url in msg and str(target) in msg and "put it at" in msg and "offline" in msg
    assert server.requests == []
    monkeypatch.delenv("MIMBENCH_OFFLINE")
    server.cut_after = 1000
    with pytest.raises(zoo.MissingCheckpointError, match="run again to resume") as info:
        fetch(src)
    assert "\n" not in str(info.value) and str(target) in str(info.value) and not target.exists()
    assert fetch(src) == target and _sha(target) == SHA
    assert fetch(src) == target and len(server.requests) == 2  # cached: no third request
