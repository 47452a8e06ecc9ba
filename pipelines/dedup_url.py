"""URL-level dedup: one document per normalised URL (newest fetch_date, then smallest doc_id)."""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
from apache_beam import pvalue

from filters.url_normalize import UrlNormalizeOptions, normalize_url
from pipelines.dedup_common import REASON_URL, fingerprint, first_two, removed, url_rank


def _url_key(doc: Mapping[str, Any], opts: UrlNormalizeOptions) -> tuple[str, Mapping[str, Any]]:
    key = normalize_url(doc.get("url") or "", opts)
    # Documents without a usable URL are never URL duplicates of each other.
    return (key if key else "\x00" + str(doc["doc_id"])), doc


class _KeepNewest(beam.DoFn):
    def process(self, element):
        _, docs = element
        first, second = first_two(docs)
        if second is None:
            yield first
            return
        # Two passes over the group (re-iterable, possibly paged) instead of a list: one URL
        # fetched a million times must not sit in memory.
        best = None
        for doc in docs:
            rank = (*url_rank(doc), fingerprint(doc))
            best = rank if best is None or rank < best else best
        emitted = False
        for doc in docs:
            if not emitted and (*url_rank(doc), fingerprint(doc)) == best:
                emitted = True
                yield doc
            else:
                yield pvalue.TaggedOutput("removed", removed(doc, REASON_URL, best[1]))
                yield pvalue.TaggedOutput("stats", ("url_removed", 1))


class DedupByUrl(beam.PTransform):
    """docs -> {"kept", "removed", "stats"}."""

    def __init__(self, url_cfg: Mapping[str, Any]):
        super().__init__()
        self.opts = UrlNormalizeOptions.from_config(url_cfg)

    def expand(self, docs):
        out = (docs
               | "KeyByUrl" >> beam.Map(_url_key, self.opts)
               | "GroupByUrl" >> beam.GroupByKey()
               | "KeepNewest" >> beam.ParDo(_KeepNewest()).with_outputs("removed", "stats", main="kept"))
        return {"kept": out.kept, "removed": out.removed, "stats": out.stats}
