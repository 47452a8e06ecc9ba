"""Beam wiring of the retroactive robots.txt opt-out.

``ReadRobots`` turns Common Crawl robotstxt WARC files (``crawl-data/<ID>/segments/*/robotstxt/``)
into ``(host, policy_text)`` pairs; ``ApplyHostOptOut`` joins documents to them by host with a
CoGroupByKey, so no worker ever holds more than one host's captures and documents at a time
(no side input, no global dict).  Decisions come from ``filters.robots``.

Records are read with the shared streaming reader ``pipelines.warc.iter_records`` (the same one
the extract stage uses), so a corrupt region of a robots file is skipped and reported as a
dead letter instead of ending the file.
"""
from __future__ import annotations

import logging
from typing import Iterable, Sequence

import apache_beam as beam
import pyarrow as pa

from filters.robots import (
    DEFAULT_MAX_BYTES,
    STATUS_MISSING,
    RobotsPolicy,
    choose_policy,
    host_key,
)
from pipelines.sources import SourceSettings, expand_inputs, open_binary, resolve_snapshot
from pipelines.warc import RawRecord, ReadError, iter_records, stream_opener

log = logging.getLogger(__name__)

STAGE = "robots"
DEAD_LETTER = "dead_letter"
STATUS_NO_HOST = "no_host"   # the document URL has no host to join on: allowed

# Columns ApplyHostOptOut adds (for schema.extend in the refine stage).
ROBOTS_FIELDS = [
    pa.field("robots_disallowed_agents", pa.string()),   # comma-separated, "" when none
    pa.field("robots_status", pa.string()),              # ok|not_found|redirect|server_error|missing|no_host
]


def robots_files(settings: SourceSettings, *, robots: str | None = None, snapshot: str | None = None,
                 source: str = "https", max_files: int | None = None, seed: int = 0) -> list[str]:
    """The robotstxt WARC files for ``--robots PATH_OR_GLOB`` or ``--snapshot ID|latest``."""
    if bool(robots) == bool(snapshot):
        raise ValueError("give exactly one of --robots PATH_OR_GLOB or --snapshot ID")
    if robots:
        return expand_inputs(robots, settings)
    _, files = resolve_snapshot(snapshot, source, settings, max_warcs=max_files, seed=seed,
                                kind="robotstxt")
    return files


def _dead(warc_file, offset, record_id, url, reason, detail) -> dict:
    return {"warc_file": warc_file, "warc_offset": offset, "warc_record_id": record_id, "url": url,
            "stage": STAGE, "reason": reason, "detail": detail}


def _wants_body(record: RawRecord) -> bool:
    return record.rec_type == "response" and record.http_status is not None and 200 <= record.http_status < 300


def robots_pairs_from_file(path: str, settings: SourceSettings, *, server_error: str = "disallow",
                           max_bytes: int = DEFAULT_MAX_BYTES) -> Iterable[tuple[str, object]]:
    """``("robots", (host, policy_text))`` or ``("dead", dead_letter_dict)`` for one WARC file."""
    # Bodies up to 4x the parse limit are read whole and cut; bigger ones are dead-lettered
    # rather than read (the shared reader never loads an oversized body).
    read_limit = max(4 * max_bytes, 1 << 20)
    opener = stream_opener(lambda: open_binary(path, settings))
    try:
        for item in iter_records(opener, path, want_body=_wants_body, max_body_bytes=read_limit):
            if isinstance(item, ReadError):
                yield "dead", _dead(item.warc_file, item.offset, item.record_id, item.target_uri,
                                    item.reason, item.detail)
                continue
            if item.rec_type != "response":
                continue   # warcinfo/request/metadata records carry no policy
            host = host_key(item.target_uri or "")
            if host is None:
                yield "dead", _dead(path, item.offset, item.record_id, item.target_uri, "bad_target_uri",
                                    "robots.txt record without a usable WARC-Target-URI")
                continue
            if _wants_body(item) and item.body is None:
                decode_error = item.decode_error
                reason = "undecodable_body" if decode_error else "robots_too_large"
                yield "dead", _dead(path, item.offset, item.record_id, item.target_uri, reason,
                                    decode_error or f"body over {read_limit} bytes not read")
                continue
            policy = RobotsPolicy.from_response(item.http_status, item.body, server_error=server_error,
                                                max_bytes=max_bytes, fetch_date=item.date)
            yield "robots", (host, policy.to_text())
    except Exception as exc:  # a source failure (file vanished, network gone) after retries
        yield "dead", _dead(path, None, None, None, "source_error", f"{type(exc).__name__}: {exc!s:.300}")


class _ReadRobotsFile(beam.DoFn):
    def __init__(self, settings: SourceSettings, server_error: str, max_bytes: int):
        self._settings = settings
        self._server_error = server_error
        self._max_bytes = max_bytes
        self._policies = beam.metrics.Metrics.counter(STAGE, "robots_captures")
        self._dead = beam.metrics.Metrics.counter(STAGE, "dead_letter")

    def process(self, path: str):
        for kind, value in robots_pairs_from_file(path, self._settings, server_error=self._server_error,
                                                  max_bytes=self._max_bytes):
            if kind == "robots":
                self._policies.inc()
                yield value
            else:
                self._dead.inc()
                log.warning("robots dead letter: %s", value)
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, value)


class ReadRobots(beam.PTransform):
    """Robotstxt WARC files -> PCollection of ``(host, policy_text)``.

    ``paths`` are resolved file paths/URLs (see ``robots_files``).  With ``with_dead_letter``
    the transform returns ``{"robots": ..., "dead_letter": ...}``; otherwise unreadable regions
    are still counted (Beam counter ``robots/dead_letter``) and logged.
    """

    def __init__(self, paths: Sequence[str], settings: SourceSettings | dict | None = None, *,
                 server_error: str = "disallow", max_bytes: int = DEFAULT_MAX_BYTES,
                 with_dead_letter: bool = False):
        super().__init__()
        if not paths:
            raise ValueError("ReadRobots: no robots.txt WARC files given")
        if not isinstance(settings, SourceSettings):
            settings = SourceSettings.from_dict(settings)
        RobotsPolicy.from_response(404, b"", server_error=server_error)  # validates server_error
        self._paths = sorted(paths)
        self._settings = settings
        self._server_error = server_error
        self._max_bytes = int(max_bytes)
        self._with_dead_letter = with_dead_letter

    def expand(self, pbegin):
        results = (
            pbegin
            | "RobotsFiles" >> beam.Create(self._paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadCaptures" >> beam.ParDo(_ReadRobotsFile(self._settings, self._server_error,
                                                           self._max_bytes)).with_outputs(DEAD_LETTER, main="robots")
        )
        if self._with_dead_letter:
            return {"robots": results.robots, "dead_letter": results[DEAD_LETTER]}
        return results.robots


def _key_by_host(doc: dict):
    key = host_key(doc.get("url") or "")
    if key is None:
        yield beam.pvalue.TaggedOutput(STATUS_NO_HOST, doc)
    else:
        yield key, doc


def _annotate(doc: dict, disallowed: list[str], status: str) -> dict:
    out = dict(doc)
    out["robots_disallowed_agents"] = ",".join(disallowed)
    out["robots_status"] = status
    return out


def _apply_policy(joined, agents: tuple[str, ...]):
    _host, groups = joined
    policy = choose_policy(RobotsPolicy.from_text(t) for t in groups["robots"])
    for doc in groups["docs"]:          # iterated lazily: a huge host is never materialised
        disallowed = policy.disallowed_agents(doc["url"], agents)
        yield _annotate(doc, disallowed, policy.status)


class ApplyHostOptOut(beam.PTransform):
    """Documents -> the same documents with ``robots_disallowed_agents`` and ``robots_status``.

    Hosts without a capture get status ``missing`` and no disallowed agents (allowed).
    """

    def __init__(self, robots_pcoll, agents: Iterable[str]):
        super().__init__()
        self._robots = robots_pcoll
        self._agents = tuple(agents)
        if not self._agents:
            raise ValueError("ApplyHostOptOut: the agent list is empty")

    def expand(self, docs):
        keyed = docs | "KeyByHost" >> beam.FlatMap(_key_by_host).with_outputs(STATUS_NO_HOST, main="keyed")
        joined = (
            {"docs": keyed.keyed, "robots": self._robots}
            | "JoinRobots" >> beam.CoGroupByKey()
            | "Decide" >> beam.FlatMap(_apply_policy, self._agents)
        )
        unjoinable = keyed[STATUS_NO_HOST] | "NoHost" >> beam.Map(_annotate, [], STATUS_NO_HOST)
        return (joined, unjoinable) | "AllDocs" >> beam.Flatten()


__all__ = ["ApplyHostOptOut", "ROBOTS_FIELDS", "ReadRobots", "STATUS_MISSING", "robots_files",
           "robots_pairs_from_file"]
