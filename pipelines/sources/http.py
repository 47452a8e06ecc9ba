"""HTTP(S) objects as resumable streams, on a per-process urllib3 connection pool."""
from __future__ import annotations

import errno
import os
import re
import threading

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from .errors import TransientError
from .retry import RETRYABLE_STATUSES, parse_retry_after
from .settings import SourceSettings
from .stream import EmptyBody, Opened, ResumableStream

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)", re.IGNORECASE)

_pools: dict[int, urllib3.PoolManager] = {}
_pools_lock = threading.Lock()


def _pool() -> urllib3.PoolManager:
    # One pool per process: a pool inherited through fork would share sockets with the parent.
    pid = os.getpid()
    with _pools_lock:
        pool = _pools.get(pid)
        if pool is None:
            pool = urllib3.PoolManager(num_pools=32, maxsize=16)
            _pools.clear()
            _pools[pid] = pool
        return pool


# Retries are ours (counted, with jittered backoff and resume); urllib3 only follows redirects.
_NO_RETRY_FOLLOW_REDIRECTS = urllib3.Retry(total=None, connect=0, read=0, other=0, status=0,
                                           redirect=5, raise_on_redirect=True,
                                           raise_on_status=False)


def _get(url: str, settings: SourceSettings, headers: dict[str, str]):
    try:
        return _pool().request(
            "GET", url, headers=headers, preload_content=False, decode_content=False,
            retries=_NO_RETRY_FOLLOW_REDIRECTS,
            timeout=urllib3.Timeout(connect=settings.timeout_s, read=settings.timeout_s))
    except Urllib3Error as error:
        # Connection refused/reset, timeouts, TLS hiccups: all worth another try.
        raise TransientError(f"GET {url} failed: {error!r}") from error


def _discard(resp) -> None:
    try:
        resp.close()
        resp.release_conn()
    except Exception:  # noqa: BLE001
        pass


def raise_for_status(url: str, resp) -> None:
    """Map a non-success status to the exception the caller should see (and whether to retry)."""
    status = resp.status
    if status in RETRYABLE_STATUSES:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        _discard(resp)
        raise TransientError(f"GET {url}: HTTP {status}", retry_after=retry_after)
    _discard(resp)
    if status in (404, 410):
        raise FileNotFoundError(errno.ENOENT, f"HTTP {status}: not found", url)
    if status in (401, 403):
        # Common Crawl's CloudFront answers 403 for keys that do not exist, too.
        raise PermissionError(errno.EACCES, f"HTTP {status}: access denied (or no such object)", url)
    raise OSError(f"GET {url}: unexpected HTTP {status}")


class _Urllib3Body:
    def __init__(self, resp):
        self._resp = resp

    def read(self, n: int) -> bytes:
        return self._resp.read(n, decode_content=False)

    def close(self) -> None:
        _discard(self._resp)


class HttpStream(ResumableStream):
    """``GET url`` streamed; interrupted bodies resume with ``Range: bytes=<pos>-``."""

    BODY_ERRORS = (Urllib3Error, OSError)

    def _fetch(self, start: int) -> Opened:
        headers = {"User-Agent": self.settings.user_agent, "Accept-Encoding": "identity"}
        if start > 0:
            headers["Range"] = f"bytes={start}-"
        resp = _get(self.url, self.settings, headers)
        validators = {"etag": resp.headers.get("ETag"),
                      "last-modified": resp.headers.get("Last-Modified")}
        if resp.status == 200:
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            return Opened(_Urllib3Body(resp), 0, size, validators)
        if resp.status == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not match:
                _discard(resp)
                raise OSError(f"GET {self.url}: 206 without a usable Content-Range "
                              f"({resp.headers.get('Content-Range')!r})")
            total = None if match.group(3) == "*" else int(match.group(3))
            return Opened(_Urllib3Body(resp), int(match.group(1)), total, validators)
        if resp.status == 416 and start > 0:
            # Asked past the end: fine only when the object is exactly ``start`` bytes long.
            match = _UNSATISFIED_RANGE.match(resp.headers.get("Content-Range", ""))
            _discard(resp)
            if match and int(match.group(1)) == start:
                return Opened(EmptyBody(), start, start, validators)
            raise OSError(f"GET {self.url}: range from byte {start} not satisfiable "
                          f"({resp.headers.get('Content-Range')!r})")
        raise_for_status(self.url, resp)
        raise AssertionError("unreachable")


__all__ = ["HttpStream", "raise_for_status"]
