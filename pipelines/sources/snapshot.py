"""Common Crawl snapshots: ``latest`` via collinfo.json, and the per-snapshot path listings."""
from __future__ import annotations

import gzip
import hashlib
import heapq
import io
import json
import re
import zlib

from .opener import open_binary
from .settings import SourceSettings

# CC-MAIN-2024-22 (year-week), plus the older yearly ids (CC-MAIN-2012, CC-MAIN-2009-2010) and
# test ids of the same shape (CC-MAIN-TEST-00).  Anything else - lower case, slashes, spaces - is
# rejected before it is pasted into a URL.
SNAPSHOT_ID = re.compile(r"^CC-MAIN-[0-9A-Z]{4}(?:-[0-9]{2}|-[0-9]{4})?$")
_YEAR_WEEK = re.compile(r"^CC-MAIN-(\d{4})-(\d{2})$")

LISTING_FILES = {
    "warc": "warc.paths.gz",
    "wet": "wet.paths.gz",
    "wat": "wat.paths.gz",
    "robotstxt": "robotstxt.paths.gz",
    "non200responses": "non200responses.paths.gz",
}
SOURCES = ("s3", "https")


def validate_snapshot_id(snapshot: str) -> str:
    if not isinstance(snapshot, str) or not SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"bad Common Crawl snapshot id {snapshot!r}: expected 'latest' or an id "
                         "like CC-MAIN-2024-22 (see https://index.commoncrawl.org/collinfo.json)")
    return snapshot


def latest_snapshot(settings: SourceSettings) -> str:
    """The newest crawl listed in collinfo.json.

    "Newest" is decided by the id itself - the greatest (year, week) among CC-MAIN-YYYY-WW ids -
    not by list position, so a reordered file cannot silently pick an old crawl.  Only when no
    entry has that shape is the first entry (collinfo is published newest first) taken.
    """
    url = settings.collinfo_url
    with open_binary(url, settings) as stream:
        raw = stream.read(64 << 20)
    try:
        entries = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{url} is not valid collinfo JSON: {error}") from error
    ids = [e.get("id") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    ids = [i for i in ids if isinstance(i, str) and SNAPSHOT_ID.match(i)]
    if not ids:
        raise ValueError(f"{url} lists no crawl ids (expected a JSON list of objects with 'id' "
                         "like CC-MAIN-2024-22)")
    dated = [(tuple(map(int, m.groups())), i) for i in ids if (m := _YEAR_WEEK.match(i))]
    return max(dated)[1] if dated else ids[0]


def listing_url(snapshot_id: str, source: str, settings: SourceSettings, kind: str = "warc") -> str:
    return _base(source, settings) + f"crawl-data/{snapshot_id}/{_listing_file(kind)}"


def _listing_file(kind: str) -> str:
    try:
        return LISTING_FILES[kind]
    except KeyError:
        raise ValueError(f"unknown listing kind {kind!r}; choose one of "
                         f"{', '.join(LISTING_FILES)}") from None


def _base(source: str, settings: SourceSettings) -> str:
    if source == "s3":
        return settings.s3_base
    if source == "https":
        return settings.https_base
    raise ValueError(f"unknown Common Crawl source {source!r}; choose one of {', '.join(SOURCES)}")


def sample_key(seed: int, path: str) -> bytes:
    """The seeded hash that ranks listing entries for sampling (smallest k are taken)."""
    return hashlib.blake2b(path.encode("utf-8"), digest_size=16,
                           key=str(int(seed)).encode("ascii")).digest()


def iter_listing(url: str, settings: SourceSettings):
    """The relative paths in a gzip ``*.paths.gz`` listing, streamed line by line."""
    try:
        stream = open_binary(url, settings)
    except (FileNotFoundError, PermissionError) as error:
        raise FileNotFoundError(
            f"no listing at {url} ({error.strerror or error}); check the snapshot id and the "
            "listing kind exist for this crawl, and the source base / endpoint") from error
    with stream, gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
        try:
            for line in io.TextIOWrapper(unzipped, encoding="utf-8"):
                line = line.strip()
                if line:
                    yield line
        except (gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError) as error:
            raise ValueError(f"{url} is not a gzip text listing: {error}") from error


def resolve_snapshot(snapshot: str, source: str, settings: SourceSettings, *,
                     max_warcs: int | None = None, seed: int = 0,
                     kind: str = "warc") -> tuple[str, list[str]]:
    """(snapshot id, absolute URLs of the snapshot's ``kind`` files under the chosen source).

    ``max_warcs`` keeps a deterministic sample: the entries with the smallest seeded hash, so the
    sample spreads over all segments, the same seed always picks the same files, and raising
    ``max_warcs`` only adds files.  The result keeps the listing's order.
    """
    base = _base(source, settings)
    _listing_file(kind)
    if max_warcs is not None and (isinstance(max_warcs, bool) or int(max_warcs) < 1):
        raise ValueError(f"max_warcs must be a positive integer or None, got {max_warcs!r}")
    snapshot_id = latest_snapshot(settings) if snapshot == "latest" else validate_snapshot_id(snapshot)
    url = listing_url(snapshot_id, source, settings, kind)

    if max_warcs is None:
        paths = list(iter_listing(url, settings))
    else:
        # Bounded heap: memory stays O(max_warcs) even for a 100k-line listing.
        heap: list[tuple[bytes, int, str]] = []
        for index, path in enumerate(iter_listing(url, settings)):
            item = (_negate(sample_key(seed, path)), index, path)
            if len(heap) < max_warcs:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        paths = [path for _, _, path in sorted(heap, key=lambda t: t[1])]
    if not paths:
        raise ValueError(f"listing {url} is empty")
    return snapshot_id, [_join(base, p) for p in paths]


def _negate(digest: bytes) -> bytes:
    # heapq is a min-heap; keeping the k *smallest* keys needs the largest kept one on top.
    return bytes(255 - b for b in digest)


def _join(base: str, path: str) -> str:
    if "://" in path:
        raise ValueError(f"listing entry {path!r} is not a relative path")
    return base + path.lstrip("/")
