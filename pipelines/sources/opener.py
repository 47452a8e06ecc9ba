"""``open_binary``: one entry point for every place a WARC can live."""
from __future__ import annotations

import io
import os
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from .settings import SourceSettings


class _CountedReader(io.BufferedReader):
    """A local or gs:// file with the same ``retries``/``resumes`` counters as network streams."""

    retries = 0
    resumes = 0


def local_path(url: str) -> str:
    """The filesystem path for a plain path or a file:// URL."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URL with a remote host is not supported: {url!r}")
        return unquote(parsed.path)
    return url


def open_binary(url: str, settings: SourceSettings) -> BinaryIO:
    """A streaming, read-only binary file object for a path, file://, s3://, http(s):// or gs:// URL.

    Never decompresses (WARC readers handle gzip members themselves).  Network streams retry
    transient failures and resume interrupted bodies; every returned object has integer
    ``retries`` and ``resumes`` attributes (always 0 for local files).
    """
    if url.startswith(("http://", "https://")):
        from .http import HttpStream
        return HttpStream(url, settings)
    if url.startswith("s3://"):
        from .s3 import S3Stream
        return S3Stream(url, settings)
    if url.startswith("gs://"):
        return open_with_beam(url)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported URL scheme in {url!r} (use a path, file://, s3://, gs://, "
                         "http:// or https://)")
    path = local_path(url)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{url} is a directory; expand it with expand_inputs first")
    return _CountedReader(io.FileIO(path, "rb"))


def open_with_beam(url: str) -> BinaryIO:
    """Open through Beam's FileSystems (gs:// and any other scheme Beam has a plugin for).

    Beam would otherwise guess compression from the ``.gz`` suffix and hand back decompressed
    bytes; WARC readers need the raw gzip members, so compression is forced off.
    """
    try:
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        handle = FileSystems.open(url, compression_type=CompressionTypes.UNCOMPRESSED)
    except ValueError as error:
        if "Unable to get filesystem" in str(error):
            raise OSError(f"cannot open {url}: Beam has no filesystem for this scheme here; for gs:// "
                          "install apache-beam[gcp]") from error
        raise
    handle.retries = 0  # Beam's GCS client retries internally and does not report counts
    handle.resumes = 0
    return handle
