"""Retroactive host opt-out: decide, from a captured robots.txt, which agents may not fetch a URL.

Parsing and matching are delegated to Protego (Scrapy's robots.txt parser, BSD-3): it implements
RFC 9309 groups, longest-match with Allow winning ties, ``*`` and ``$`` wildcards and
case-insensitive directives.  ``tests/test_robots.py`` measures it on Google's conformance cases.

What this module adds is the part the RFC leaves to the crawler - what an HTTP status means -
and a small serialisable record so the Beam join can ship a policy between workers:

* 2xx: the body is parsed (a UTF-8 BOM, whole or partial, is stripped first; only the first
  ``max_bytes`` are read, RFC 9309 2.5 requires at least 500 KiB to be honoured).
* 3xx: the capture is a redirect whose target we do not have; RFC 9309 2.3.1.2 lets a crawler
  treat an unfollowed robots.txt as unavailable, i.e. like 4xx: everything allowed.
* 4xx: "unavailable", everything allowed (RFC 9309 2.3.1.3).
* 5xx or no status: "unreachable".  RFC 9309 2.3.1.4 says a crawler MUST assume complete
  disallow.  That is our default (``server_error: disallow``); ``allow`` is available for teams
  that read a transient crawl-time outage as no opinion.

A host with no capture at all is allowed, with status ``missing`` (the caller records it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlsplit

from protego import Protego

STATUS_OK = "ok"                    # 2xx, parsed
STATUS_REDIRECT = "redirect"        # 3xx capture, target unknown -> allowed
STATUS_NOT_FOUND = "not_found"      # 4xx -> allowed
STATUS_SERVER_ERROR = "server_error"  # 5xx / unreadable status -> per policy
STATUS_MISSING = "missing"          # no capture for the host -> allowed

SERVER_ERROR_POLICIES = ("disallow", "allow")
DEFAULT_MAX_BYTES = 512 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"


def strip_bom(body: bytes) -> bytes:
    """Drop a UTF-8 byte order mark, also a truncated one (Google's parser does the same)."""
    for n in (3, 2, 1):
        if body[:n] == _UTF8_BOM[:n]:
            return body[n:]
    return body


def host_key(url: str) -> str | None:
    """The join key for a URL: lower-case host (IDNA-encoded), plus the port when non-default.

    The scheme is not part of the key: Common Crawl fetches one robots.txt per host and a site
    rarely serves different rules over http and https.  None for URLs without a host.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except (ValueError, AttributeError):
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # leave hosts the IDNA codec rejects as they are; they still join with themselves
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    return host


def classify_status(status: int | None) -> str:
    if status is None:
        return STATUS_SERVER_ERROR
    if 200 <= status < 300:
        return STATUS_OK
    if 300 <= status < 400:
        return STATUS_REDIRECT
    if 400 <= status < 500:
        return STATUS_NOT_FOUND
    return STATUS_SERVER_ERROR


@dataclass
class RobotsPolicy:
    """One host's robots.txt decision rules (picklable; ``to_text``/``from_text`` for shuffles)."""

    status: str
    http_status: int | None = None
    body: str = ""
    server_error: str = "disallow"
    fetch_date: str | None = None          # WARC-Date of the capture (used to pick among several)
    _parser: Protego | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_response(cls, status: int | None, body: bytes | None, *, server_error: str = "disallow",
                      max_bytes: int = DEFAULT_MAX_BYTES, fetch_date: str | None = None) -> "RobotsPolicy":
        if server_error not in SERVER_ERROR_POLICIES:
            raise ValueError(f"server_error must be one of {SERVER_ERROR_POLICIES}, got {server_error!r}")
        kind = classify_status(status)
        text = ""
        if kind == STATUS_OK:
            raw = strip_bom((body or b"")[:max_bytes])
            # robots.txt is UTF-8 by RFC 9309; undecodable bytes become U+FFFD instead of failing,
            # so one bad byte in a comment cannot turn a whole file into "allow all".
            text = raw.decode("utf-8", errors="replace")
        return cls(status=kind, http_status=status, body=text, server_error=server_error,
                   fetch_date=fetch_date)

    @classmethod
    def missing(cls) -> "RobotsPolicy":
        return cls(status=STATUS_MISSING)

    def _rules(self) -> Protego:
        if self._parser is None:
            self._parser = Protego.parse(self.body)
        return self._parser

    def disallowed_agents(self, url: str, agents: Iterable[str]) -> list[str]:
        """The agents (in the given order) that may not fetch ``url`` under this policy."""
        agents = list(agents)
        if self.status == STATUS_OK:
            rules = self._rules()
            return [a for a in agents if not rules.can_fetch(url, a)]
        if self.status == STATUS_SERVER_ERROR and self.server_error == "disallow":
            return agents
        return []

    def to_text(self) -> str:
        return json.dumps({"status": self.status, "http_status": self.http_status, "body": self.body,
                           "server_error": self.server_error, "fetch_date": self.fetch_date},
                          sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_text(cls, text: str) -> "RobotsPolicy":
        d = json.loads(text)
        return cls(status=d["status"], http_status=d.get("http_status"), body=d.get("body", ""),
                   server_error=d.get("server_error", "disallow"), fetch_date=d.get("fetch_date"))


_STATUS_RANK = {STATUS_OK: 3, STATUS_SERVER_ERROR: 2, STATUS_NOT_FOUND: 1, STATUS_REDIRECT: 0}


def choose_policy(policies: Iterable[RobotsPolicy]) -> RobotsPolicy:
    """One policy for a host captured several times (several segments, http and https).

    A 2xx capture beats error captures (RFC 9309 2.4 lets a crawler keep using a known file while
    the server errs); among equals the latest capture wins - a retroactive opt-out is the host's
    latest wish.  Ties are broken on the serialised text so the choice never depends on order.
    """
    best: RobotsPolicy | None = None
    best_key = None
    for policy in policies:
        key = (_STATUS_RANK.get(policy.status, -1), policy.fetch_date or "", policy.to_text())
        if best_key is None or key > best_key:
            best, best_key = policy, key
    return best if best is not None else RobotsPolicy.missing()
