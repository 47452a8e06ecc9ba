"""Exceptions raised by the input sources."""
from __future__ import annotations


class InputError(ValueError):
    """An input spec that names nothing readable (bad path, empty glob, empty bucket prefix)."""


class ObjectChangedError(OSError):
    """A remote object changed while it was being read; splicing two versions would corrupt it."""


class TransientError(Exception):
    """A failure worth retrying (throttling, 5xx, dropped connection).

    ``retry_after`` is the server's requested delay in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RetriesExhaustedError(OSError):
    """A transient failure that persisted through every allowed retry."""
