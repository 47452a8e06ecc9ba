"""A read-only byte stream over a remote object that survives dropped connections.

Subclasses know how to issue one ranged GET (HTTP(S), S3); this class owns the position, the
resume-with-Range logic, and the check that every response describes the same object version.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ObjectChangedError, RetriesExhaustedError, TransientError
from .retry import RetryCounter
from .settings import SourceSettings

_SKIP_CHUNK = 1 << 20


class Body(Protocol):
    def read(self, n: int) -> bytes: ...
    def close(self) -> None: ...


@dataclass
class Opened:
    """One successful GET: its body, where that body starts in the object, and the object's identity."""

    body: Body
    offset: int
    size: int | None
    validators: dict[str, Any] = field(default_factory=dict)  # e.g. {"etag": ..., "last-modified": ...}


class EmptyBody:
    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


class ResumableStream(io.RawIOBase):
    """Sequential reader.

    ``retries`` counts failed requests that were retried; ``resumes`` counts interrupted bodies
    that were picked up again with a ranged request.
    """

    # Exceptions that a body read raises when the connection drops mid-body; set by subclasses.
    BODY_ERRORS: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, url: str, settings: SourceSettings):
        super().__init__()
        self.url = url
        self.name = url
        self.settings = settings
        self.resumes = 0
        self._counter = RetryCounter(settings, url)
        self._pos = 0
        self._size: int | None = None
        self._validators: dict[str, Any] | None = None
        self._body: Body | None = None
        self._stalls = 0  # consecutive interruptions without a single new byte
        self._open_at(0)  # eagerly, so a missing object fails in open_binary rather than on first read

    # -- subclass hook ---------------------------------------------------------------------------
    def _fetch(self, start: int) -> Opened:
        """GET the object from byte ``start`` (``Range: bytes=start-`` when start > 0).

        Raises TransientError for anything worth retrying, FileNotFoundError/PermissionError/OSError
        otherwise.  May answer from offset 0 (a server that ignores Range); this class skips ahead.
        """
        raise NotImplementedError

    # -- counters --------------------------------------------------------------------------------
    @property
    def retries(self) -> int:
        return self._counter.retries

    @property
    def size(self) -> int | None:
        return self._size

    # -- io.RawIOBase ----------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:
        data = self.read(len(b))
        n = len(data)
        memoryview(b).cast("B")[:n] = data
        return n

    def read(self, n: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if n is None or n < 0:
            return self.readall()
        chunks: list[bytes] = []
        want = n
        while want > 0:
            chunk = self._read_some(want)
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
        return b"".join(chunks)

    def readall(self) -> bytes:
        chunks = []
        while True:
            chunk = self._read_some(_SKIP_CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def close(self) -> None:
        if not self.closed:
            self._drop_body()
        super().close()

    # -- internals -------------------------------------------------------------------------------
    def _read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one unless at the end), resuming through interruptions."""
        while True:
            if self._body is None:
                if self._size is not None and self._pos >= self._size:
                    return b""
                self.resumes += 1
                self._open_at(self._pos)
                continue
            try:
                chunk = self._body.read(n)
            except self.BODY_ERRORS as error:
                self._interrupted(f"connection lost at byte {self._pos}: {error!r}")
                continue
            if chunk:
                self._pos += len(chunk)
                self._stalls = 0
                return chunk
            if self._size is not None and self._pos < self._size:
                self._interrupted(f"body ended at byte {self._pos} of {self._size}")
                continue
            return b""

    def _interrupted(self, why: str) -> None:
        self._drop_body()
        if self._stalls >= self.settings.max_retries:
            raise RetriesExhaustedError(
                f"{self.url}: interrupted {self._stalls + 1} times in a row without progress ({why})")
        self._counter.sleep_before(self._stalls, TransientError(why))
        self._stalls += 1

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may itself fail
                pass

    def _open_at(self, pos: int) -> None:
        def attempt() -> Opened:
            opened = self._fetch(pos)
            try:
                self._check_same_object(opened)
                if opened.offset > pos:
                    raise OSError(f"{self.url}: asked for bytes from {pos}, server answered from "
                                  f"{opened.offset}")
                self._skip(opened, pos - opened.offset)
            except BaseException:
                try:
                    opened.body.close()
                except Exception:  # noqa: BLE001
                    pass
                raise
            return opened

        opened = self._counter.call(attempt)
        if self._validators is None:
            self._validators = opened.validators
        if self._size is None:
            self._size = opened.size
        self._body = opened.body

    def _skip(self, opened: Opened, count: int) -> None:
        # A server that ignores Range resends the object from the start: discard what we already gave.
        while count > 0:
            try:
                got = opened.body.read(min(count, _SKIP_CHUNK))
            except self.BODY_ERRORS as error:
                raise TransientError(f"connection lost while skipping to byte {opened.offset}: "
                                     f"{error!r}") from error
            if not got:
                raise TransientError("body ended while skipping already-read bytes")
            count -= len(got)
            opened.offset += len(got)

    def _check_same_object(self, opened: Opened) -> None:
        if self._validators is None:
            return
        changes = []
        for key, before in self._validators.items():
            after = opened.validators.get(key)
            if before is not None and after is not None and before != after:
                changes.append(f"{key} {before!r} -> {after!r}")
        if self._size is not None and opened.size is not None and opened.size != self._size:
            changes.append(f"size {self._size} -> {opened.size}")
        if changes:
            raise ObjectChangedError(
                f"{self.url} changed while being read (at byte {self._pos}: {'; '.join(changes)}); "
                "refusing to splice two versions - rerun to read the new version")
