"""URL normalisation for URL-level deduplication.

RFC 3986 normalisation (scheme and host to lower case, IDNA hosts, default ports removed, dot
segments resolved, percent-encoding made canonical) comes from the ``url-normalize`` library
(MIT).  On top of it, configurable rules that are *not* equivalences under the RFC but usually are
on the web: dropping the fragment, dropping tracking parameters, sorting the query, dropping a
trailing slash, dropping a leading ``www.``.

Why not ``courlan.normalize_url`` (already installed with trafilatura)?  Its tracker filter is a
regex that also removes ordinary parameters -- ``?game=1``, ``?refresh=1``, ``?sourcecode=1`` and
``?uid=5`` all lose their query -- which would merge distinct pages and delete documents.  Here the
tracking parameters are an explicit, configurable list of names and prefixes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import SplitResult, urlsplit, urlunsplit

from url_normalize import url_normalize as _rfc3986_normalize

DEFAULT_TRACKING_PARAMS = (
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
    "oly_enc_id", "vero_id", "ck_subscriber_id", "s_cid", "ref_src",
)
DEFAULT_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "matomo_", "hsa_")


@dataclass(frozen=True)
class UrlNormalizeOptions:
    drop_fragment: bool = True
    strip_tracking_params: bool = True
    tracking_params: tuple[str, ...] = DEFAULT_TRACKING_PARAMS
    tracking_param_prefixes: tuple[str, ...] = DEFAULT_TRACKING_PREFIXES
    sort_query: bool = True
    strip_trailing_slash: bool = True
    strip_www: bool = False
    _names: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_names", frozenset(p.lower() for p in self.tracking_params))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "UrlNormalizeOptions":
        keys = {"drop_fragment", "strip_tracking_params", "tracking_params", "tracking_param_prefixes",
                "sort_query", "strip_trailing_slash", "strip_www"}
        kwargs = {k: cfg[k] for k in keys if k in cfg}
        for k in ("tracking_params", "tracking_param_prefixes"):
            if k in kwargs:
                kwargs[k] = tuple(str(x).lower() for x in (kwargs[k] or ()))
        return cls(**kwargs)

    def is_tracking(self, name: str) -> bool:
        low = name.lower()
        return low in self._names or any(low.startswith(p) for p in self.tracking_param_prefixes)


def _filter_query(query: str, opts: UrlNormalizeOptions) -> str:
    if not query:
        return ""
    # Split by hand, not parse_qsl: keeps blank values ("?print") and the exact encoding
    # url-normalize already made canonical.
    params = [p for p in query.split("&") if p]
    if opts.strip_tracking_params:
        params = [p for p in params if not opts.is_tracking(p.partition("=")[0])]
    if opts.sort_query:
        params.sort()
    return "&".join(params)


def normalize_url(url: str, opts: UrlNormalizeOptions | None = None) -> str:
    """Normalised form of ``url``; a URL that cannot be parsed is returned stripped, unchanged."""
    opts = opts or UrlNormalizeOptions()
    raw = (url or "").strip()
    if not raw:
        return ""
    try:
        normalized = _rfc3986_normalize(raw) or raw
        parts = urlsplit(normalized)
    except (ValueError, UnicodeError):
        return raw
    netloc = parts.netloc
    if opts.strip_www and parts.hostname and parts.hostname.startswith("www."):
        netloc = netloc.replace("www.", "", 1)
    path = parts.path
    query = _filter_query(parts.query, opts)
    if opts.strip_trailing_slash and len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if not path and (query or netloc):
        path = "/"
    fragment = "" if opts.drop_fragment else parts.fragment
    return urlunsplit(SplitResult(parts.scheme, netloc, path, query, fragment))
