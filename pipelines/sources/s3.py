"""S3 objects as resumable streams, and S3 listing, with boto3.

botocore's own retries are switched off so that every retry goes through the same counted,
jittered loop as HTTP(S) and so that a dropped body resumes instead of restarting.
"""
from __future__ import annotations

import errno
import os
import threading
from typing import Iterator

import botocore.exceptions as bex
import urllib3.exceptions

from .errors import TransientError
from .retry import RETRYABLE_STATUSES, RetryCounter
from .settings import SourceSettings
from .stream import Opened, ResumableStream

_THROTTLE_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                             "InternalError", "ServiceUnavailable",
                             "RequestLimitExceeded"})
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})

# Failures of the connection itself: retry (or resume, when they happen mid-body).
_NETWORK_ERRORS = (bex.ConnectionError, bex.HTTPClientError, bex.IncompleteReadError,
                   urllib3.exceptions.HTTPError, OSError)

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"s3 URL without a bucket: {url!r}")
    return bucket, key


def s3_client(settings: SourceSettings):
    """A cached boto3 S3 client for these settings (clients are thread-safe, sessions are not)."""
    key = (os.getpid(), settings.s3_endpoint_url, settings.s3_region, settings.s3_unsigned,
           settings.timeout_s, settings.user_agent)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=settings.timeout_s, read_timeout=settings.timeout_s,
                max_pool_connections=32, user_agent_extra=settings.user_agent,
                signature_version=UNSIGNED if settings.s3_unsigned else None)
            session = boto3.session.Session()
            client = session.client("s3", endpoint_url=settings.s3_endpoint_url,
                                    region_name=settings.s3_region, config=config)
            _clients[key] = client
        return client


def _translate(error: BaseException, url: str) -> BaseException:
    """The exception a caller should see for a botocore failure (TransientError -> retried)."""
    if isinstance(error, bex.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_CODES or status == 404:
            return FileNotFoundError(errno.ENOENT, f"S3 {code or status}: not found", url)
        if code in _DENIED_CODES or status == 403:
            return PermissionError(errno.EACCES, f"S3 {code or status}: access denied", url)
        if code in _THROTTLE_CODES or status in RETRYABLE_STATUSES:
            return TransientError(f"{url}: S3 {code or status}")
        return OSError(f"{url}: S3 error {code or status}: {error}")
    if isinstance(error, bex.NoCredentialsError):
        return PermissionError(
            errno.EACCES, "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_PROFILE, use "
            "s3_unsigned for a public mirror, or read over HTTPS with --source https)", url)
    if isinstance(error, _NETWORK_ERRORS):
        return TransientError(f"{url}: {error!r}")
    return error


def call_s3(fn, url: str):
    """Run one botocore call, converting its failures via ``_translate``."""
    try:
        return fn()
    except (bex.BotoCoreError, bex.ClientError, urllib3.exceptions.HTTPError, OSError) as error:
        raise _translate(error, url) from error


class _BotoBody:
    def __init__(self, body):
        self._body = body

    def read(self, n: int) -> bytes:
        return self._body.read(n)

    def close(self) -> None:
        self._body.close()


class S3Stream(ResumableStream):
    """``get_object`` streamed; interrupted bodies resume with ``Range=bytes=<pos>-``."""

    BODY_ERRORS = _NETWORK_ERRORS

    def __init__(self, url: str, settings: SourceSettings):
        self.bucket, self.key = split_s3_url(url)
        if not self.key:
            raise ValueError(f"s3 URL names a bucket but no object: {url!r}")
        super().__init__(url, settings)

    def _fetch(self, start: int) -> Opened:
        kwargs = {"Bucket": self.bucket, "Key": self.key}
        if start > 0:
            kwargs["Range"] = f"bytes={start}-"
        client = s3_client(self.settings)
        resp = call_s3(lambda: client.get_object(**kwargs), self.url)
        validators = {"etag": resp.get("ETag"), "last-modified": resp.get("LastModified"),
                      "version": resp.get("VersionId")}
        offset, size = 0, resp.get("ContentLength")
        content_range = resp.get("ContentRange")
        if content_range:
            # "bytes 100-199/200"
            spec, _, total = content_range.partition(" ")[2].partition("/")
            offset = int(spec.split("-")[0])
            size = None if total == "*" else int(total)
        # No ContentRange on a ranged request means the whole object; ResumableStream skips ahead.
        return Opened(_BotoBody(resp["Body"]), offset, size, validators)


def list_keys(bucket: str, prefix: str, settings: SourceSettings,
              counter: RetryCounter | None = None, page_size: int = 1000) -> Iterator[str]:
    """Every key under ``prefix`` (paginated list_objects_v2, each page retried)."""
    client = s3_client(settings)
    counter = counter or RetryCounter(settings, f"s3://{bucket}/{prefix}")
    url = f"s3://{bucket}/{prefix}"
    token = None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            kwargs["ContinuationToken"] = token
        page = counter.call(lambda: call_s3(lambda: client.list_objects_v2(**kwargs), url))
        for item in page.get("Contents", ()):
            yield item["Key"]
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
