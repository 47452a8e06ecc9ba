"""URL-level dedup: one document per normalised URL (newest fetch_date, then smallest doc_id).

The stubs cross the GroupByKey without ``url`` (the key holds its normalised form) and leave the
step without ``urank`` (no later step reads them)."""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
from apache_beam import pvalue

from filters.dedup.policy import REASON_URL, first_two
from filters.url_normalize import UrlNormalizeOptions, normalize_url
from pipelines.dedup.common import removed, without


def _url_key(stub: Mapping[str, Any], opts: UrlNormalizeOptions) -> tuple[str, Mapping[str, Any]]:
    key = normalize_url(stub["url"] or "", opts)
    # Documents without a usable URL are never URL duplicates of each other.
    return (key if key else "\x00" + str(stub["doc_id"])), without(stub, "url")


def _rank(stub: Mapping[str, Any]) -> tuple[str, str, str]:
    return (*stub["urank"], stub["fp"])


class _KeepNewest(beam.DoFn):
    def process(self, element):
        _, stubs = element
        first, second = first_two(stubs)
        if second is None:
            yield without(first, "urank")
            return
        # Two passes over the group (re-iterable, possibly paged) instead of a list: one URL
        # fetched a million times must not sit in memory.
        best = None
        for stub in stubs:
            rank = _rank(stub)
            best = rank if best is None or rank < best else best
        emitted = False
        for stub in stubs:
            if not emitted and _rank(stub) == best:
                emitted = True
                yield without(stub, "urank")
            else:
                yield pvalue.TaggedOutput("removed", removed(without(stub, "urank"), REASON_URL, best[1]))
                yield pvalue.TaggedOutput("stats", ("url_removed", 1))


class DedupByUrl(beam.PTransform):
    """stubs -> {"kept", "removed", "stats"}."""

    def __init__(self, url_cfg: Mapping[str, Any]):
        super().__init__()
        self.opts = UrlNormalizeOptions.from_config(url_cfg)

    def expand(self, stubs):
        out = (stubs
               | "KeyByUrl" >> beam.Map(_url_key, self.opts)
               | "GroupByUrl" >> beam.GroupByKey()
               | "KeepNewest" >> beam.ParDo(_KeepNewest()).with_outputs("removed", "stats", main="kept"))
        return {"kept": out.kept, "removed": out.removed, "stats": out.stats}
