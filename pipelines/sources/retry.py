"""Backoff and the retry loop shared by the HTTP(S) and S3 clients."""
from __future__ import annotations

import email.utils
import random
import time
from typing import Callable, TypeVar

from .errors import RetriesExhaustedError, TransientError
from .settings import SourceSettings

T = TypeVar("T")

# Statuses that say "try again later" rather than "this will never work".
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def backoff_delay(attempt: int, settings: SourceSettings, rng: random.Random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Full jitter (a uniform draw below the exponential cap) keeps many workers that failed together
    from retrying together.  A server's Retry-After wins but is still capped by ``backoff_max_s``
    so a hostile or confused header cannot stall a worker for hours.
    """
    if retry_after is not None:
        return max(0.0, min(retry_after, settings.backoff_max_s))
    cap = min(settings.backoff_max_s, settings.backoff_base_s * (2 ** min(attempt, 62)))
    return rng.uniform(0.0, cap)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RetryCounter:
    """Runs callables with retries, counting every retry it made (for the pipeline's report)."""

    def __init__(self, settings: SourceSettings, describe: str):
        self.settings = settings
        self.describe = describe
        self.retries = 0
        self._rng = random.Random()

    def sleep_before(self, attempt: int, error: TransientError) -> None:
        time.sleep(backoff_delay(attempt, self.settings, self._rng, error.retry_after))

    def call(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except TransientError as error:
                if attempt >= self.settings.max_retries:
                    raise RetriesExhaustedError(
                        f"{self.describe}: still failing after {attempt} retries: {error}") from error
                self.sleep_before(attempt, error)
                attempt += 1
                self.retries += 1
