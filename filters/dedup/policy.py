"""Which document wins: keep policies as sortable keys, row fingerprints, removal reasons.

Every "which document wins" decision is a minimum over a totally ordered key that depends only on
the document, never on the order Beam delivers elements, so results are the same on any number of
workers.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import struct
from typing import Any, Iterable, Mapping

REASON_URL = "url"
REASON_LINES = "line-too-short"
REASON_MINHASH = "minhash"
REASON_DUP_ID = "duplicate-doc-id"

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MISSING = "1" + "0" * 16


def fetch_micros(value: Any) -> int | None:
    """fetch_date as microseconds since the epoch (naive datetimes count as UTC); None if absent."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    return None


def _newest_first(value: Any) -> str:
    us = fetch_micros(value)
    if us is None:
        return _MISSING
    return "0" + format((1 << 63) - 1 - max(min(us + (1 << 62), (1 << 63) - 1), 0), "016x")


def _highest_first(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return _MISSING
    try:
        q = float(value)
    except (TypeError, ValueError):
        return _MISSING
    if math.isnan(q):
        return _MISSING
    bits = struct.unpack(">Q", struct.pack(">d", q))[0]
    ascending = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return "0" + format(0xFFFFFFFFFFFFFFFF - ascending, "016x")


def node_key(doc: Mapping[str, Any], quality_column: str | None) -> str:
    """A string whose order is the keep policy: highest quality, newest fetch, smallest doc_id.

    Used as the node id in connected components, so the component minimum *is* the document to
    keep and no extra join is needed to pick it.
    """
    quality = doc.get(quality_column) if quality_column else None
    return _highest_first(quality) + _newest_first(doc.get("fetch_date")) + str(doc["doc_id"])


NODE_PREFIX = 34


def node_doc_id(node: str) -> str:
    return node[NODE_PREFIX:]


def url_rank(doc: Mapping[str, Any]) -> tuple[str, str]:
    """Keep policy inside one URL: newest fetch_date, then smallest doc_id."""
    return _newest_first(doc.get("fetch_date")), str(doc["doc_id"])


def fingerprint(doc: Mapping[str, Any]) -> str:
    """Hash of a whole row: the last tie-break between rows that agree on every policy field.

    The dedup transform takes it once per input row (before any step changes the row) and uses
    that value for every tie-break, so the steps never need the row itself."""
    blob = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def first_two(values: Iterable[Any]) -> tuple[Any, Any]:
    """The first two values of a (possibly huge, lazily paged) iterable, without reading the rest."""
    it = iter(values)
    return next(it, None), next(it, None)
