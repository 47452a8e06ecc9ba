"""Real local servers for source tests: moto's S3 server, a Range-capable HTTP file server, a
fault-injecting proxy, and a miniature Common Crawl layout to serve from either.

Everything binds to 127.0.0.1 on a free port; nothing touches the network.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import logging
import os
import random
import re
import shutil
import socket
import struct
import threading
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit

import pytest

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that could point boto3 at a real account or endpoint while a test runs.
_AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                     "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION")

STATUS_FAULTS = ("503", "503-retry-after-0", "429")
BODY_FAULTS = ("reset", "truncate")
ALL_FAULTS = STATUS_FAULTS + BODY_FAULTS


@contextlib.contextmanager
def patched_env(set_vars: dict[str, str], clear: Iterable[str] = ()) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*set_vars, *clear]}
    try:
        for k in clear:
            os.environ.pop(k, None)
        os.environ.update(set_vars)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's real S3 server on 127.0.0.1:<free port>; yields its endpoint URL.

    Fake credentials are in the environment for the duration so boto3 signs requests without
    ever finding a real account.
    """
    from moto.server import ThreadedMotoServer

    # moto's request handler logs every request through werkzeug even with verbose=False.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with patched_env(FAKE_AWS_ENV, _AWS_ENV_TO_CLEAR):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            # Backends are process-global in moto: start every server from an empty state.
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
            conn.close()
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def moto_s3() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


def s3_test_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def upload_dir_to_s3(endpoint: str, bucket: str, root: Path) -> list[str]:
    """Create ``bucket`` (if needed) and upload every file under ``root`` keyed by its relative path."""
    client = s3_test_client(endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    keys = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            key = path.relative_to(root).as_posix()
            client.upload_file(str(path), bucket, key)
            keys.append(key)
    return keys


class FaultInjector:
    """Seeded, deterministic faults: each request draws once; with probability ``p`` it gets one
    of ``kinds``.  ``script`` forces the actions of the next requests (None = no fault) before
    the random draws resume.  ``counts`` records what was injected."""

    def __init__(self, p: float = 0.0, seed: int = 0, kinds: Iterable[str] = ALL_FAULTS):
        self.p = p
        self.kinds = tuple(kinds)
        unknown = set(self.kinds) - set(ALL_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self.script: list[str | None] = []
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def decide(self) -> tuple[str | None, float]:
        """(fault kind or None, fraction of the body to send before a body fault)."""
        with self._lock:
            fraction = self._rng.random()
            if self.script:
                action = self.script.pop(0)
            elif self.kinds and self._rng.random() < self.p:
                action = self._rng.choice(self.kinds)
            else:
                action = None
            if action:
                self.counts[action] += 1
            return action, fraction


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, backend, faults: FaultInjector | None):
        super().__init__(("127.0.0.1", 0), handler)
        self.backend = backend
        self.faults = faults
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):  # aborted connections are the point here
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass

    def do_GET(self):
        self._serve()

    def do_HEAD(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self) -> None:
        srv = self.server
        action, fraction = (srv.faults.decide() if srv.faults and self.command in ("GET", "HEAD")
                            else (None, 0.0))
        record = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                  "fault": action}
        with srv.lock:
            srv.requests.append(record)
        if action in STATUS_FAULTS:
            self._drain_request_body()
            status = 429 if action == "429" else 503
            body = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
                    b"<Message>injected fault</Message></Error>")
            self.send_response(status)
            if action == "503-retry-after-0":
                self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            record["status"] = status
            return
        status, headers, body = srv.backend.respond(self)
        record["status"] = status
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if action in BODY_FAULTS and body:
            cut = int(len(body) * fraction)
            try:
                self.wfile.write(body[:cut])
                self.wfile.flush()
            except OSError:
                pass
            self._abort(hard=(action == "reset"))
            return
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _drain_request_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _abort(self, hard: bool) -> None:
        self.close_connection = True
        try:
            if hard:  # SO_LINGER 0: close sends RST, the client sees "connection reset by peer"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_WR)
            self.connection.close()
        except OSError:
            pass


class _ServerBase:
    """Start/stop plumbing shared by the file server and the proxy (context managers)."""

    def __init__(self, backend, faults: FaultInjector | None):
        self.faults = faults
        self._server = _Server(_Handler, backend, faults)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> list[dict]:
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _FileBackend:
    _RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")

    def __init__(self, root: Path, honor_range: bool, status_overrides: dict[str, int]):
        self.root = Path(root).resolve()
        self.honor_range = honor_range
        self.status_overrides = status_overrides
        self._etags: dict[tuple, str] = {}

    def _etag(self, path: Path, stat: os.stat_result) -> str:
        # A content hash (like S3's MD5 ETag), so any rewrite changes it even within one mtime tick.
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in self._etags:
            self._etags[key] = '"' + hashlib.md5(path.read_bytes()).hexdigest() + '"'
        return self._etags[key]

    def respond(self, handler: _Handler):
        rel = unquote(urlsplit(handler.path).path).lstrip("/")
        if rel in self.status_overrides:
            body = b"overridden"
            return self.status_overrides[rel], [("Content-Length", str(len(body)))], body
        path = (self.root / rel).resolve()
        if self.root not in path.parents or not path.is_file():
            body = b"not found"
            return 404, [("Content-Length", str(len(body)))], body
        stat = path.stat()
        data = path.read_bytes()
        headers = [("Content-Type", "application/octet-stream"),
                   ("ETag", self._etag(path, stat)),
                   ("Last-Modified", formatdate(stat.st_mtime, usegmt=True))]
        if self.honor_range:
            headers.append(("Accept-Ranges", "bytes"))
        match = self._RANGE.match(handler.headers.get("Range", "") or "")
        if self.honor_range and match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                return 416, headers + [("Content-Range", f"bytes */{len(data)}"),
                                       ("Content-Length", "0")], b""
            end = min(end, len(data) - 1)
            body = data[start:end + 1]
            return 206, headers + [("Content-Range", f"bytes {start}-{end}/{len(data)}"),
                                   ("Content-Length", str(len(body)))], body
        return 200, headers + [("Content-Length", str(len(data)))], data


class FileServer(_ServerBase):
    """Serves ``root`` over HTTP/1.1 with Range/206, ETag and Last-Modified; optional faults.

    ``honor_range=False`` imitates servers that ignore Range and always answer 200;
    ``status_overrides`` maps relative paths to a fixed status (e.g. {"secret.warc": 403}).
    """

    def __init__(self, root: Path, faults: FaultInjector | None = None, honor_range: bool = True,
                 status_overrides: dict[str, int] | None = None):
        super().__init__(_FileBackend(root, honor_range, dict(status_overrides or {})), faults)


class _ProxyBackend:
    _HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                   "proxy-connection"}

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname, parts.port

    def respond(self, handler: _Handler):
        body = handler._drain_request_body()
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in self._HOP_BY_HOP}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(handler.command, handler.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in self._HOP_BY_HOP and k.lower() != "content-length"]
            out.append(("Content-Length", str(len(data))))
            return resp.status, out, data
        finally:
            conn.close()


class FaultyProxy(_ServerBase):
    """A reverse proxy that injects ``faults`` in front of another server (e.g. moto's S3)."""

    def __init__(self, upstream: str, faults: FaultInjector):
        super().__init__(_ProxyBackend(upstream), faults)

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/")


def write_gzip_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: byte-identical listings on every run.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for line in lines:
            gz.write(line.encode("utf-8") + b"\n")


def collinfo_entry(snapshot_id: str) -> dict:
    return {
        "id": snapshot_id,
        "name": f"{snapshot_id} Index",
        "timegate": f"https://index.commoncrawl.org/{snapshot_id}/",
        "cdx-api": f"https://index.commoncrawl.org/{snapshot_id}-index",
        "from": "2000-01-01T00:00:00",
        "to": "2000-01-08T00:00:00",
    }


def make_cc_layout(root: Path, snapshot_id: str, warc_files: list[Path],
                   extra_collinfo_ids: Iterable[str] = (), segments: int = 2) -> list[str]:
    """A miniature Common Crawl tree under ``root``; returns the listing's relative paths.

    Writes ``crawl-data/<ID>/segments/<seg>/warc/<name>`` (files copied round-robin over
    ``segments`` segments), ``crawl-data/<ID>/warc.paths.gz`` and ``collinfo.json`` (newest id
    first, as Common Crawl publishes it).  Serve ``root`` with FileServer or upload it with
    ``upload_dir_to_s3``.
    """
    root = Path(root)
    rel_paths = []
    for i, src in enumerate(warc_files):
        segment = f"1700000000000.{i % segments:02d}"
        rel = f"crawl-data/{snapshot_id}/segments/{segment}/warc/{Path(src).name}"
        dest = root / rel
        if dest.exists():
            raise ValueError(f"two WARCs named {Path(src).name} landed in segment {segment}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        rel_paths.append(rel)
    rel_paths.sort()
    write_gzip_lines(root / "crawl-data" / snapshot_id / "warc.paths.gz", rel_paths)
    ids = sorted({snapshot_id, *extra_collinfo_ids}, reverse=True)
    (root / "collinfo.json").write_text(json.dumps([collinfo_entry(i) for i in ids], indent=1))
    return rel_paths


def write_payload(path: Path, size: int, seed: int = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes written to ``path`` (incompressible, so no
    layer can shortcut them)."""
    data = random.Random(seed).randbytes(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data
