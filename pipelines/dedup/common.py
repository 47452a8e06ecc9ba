"""What the dedup steps pass between them: small per-document *stubs*, never the documents.

A stub is a dict with the fields the steps decide on -- ``fp`` (the row's fingerprint: the join
key back to the row and the last tie-break of every keep policy), ``doc_id``, ``url``, ``urank``
(URL keep policy), ``node`` (MinHash node id = keep policy) -- plus ``add`` (the columns the
steps add to the row: cluster, reason, kept doc_id, lines removed) and ``drops`` (packed keys of
the lines to cut, or None).  Texts and the other columns stay in the row, which is shuffled once, at the end
(``JoinBack``), where the decisions are applied to it.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam

from filters.dedup.policy import node_key, url_rank


def make_stub(doc: Mapping[str, Any], fp: str, quality_column: str | None) -> dict:
    """The stub of ``doc`` whose fingerprint is ``fp``."""
    return {"fp": fp, "doc_id": doc["doc_id"], "url": doc.get("url"), "urank": url_rank(doc),
            "node": node_key(doc, quality_column), "add": {}, "drops": None}


def with_fields(stub: Mapping[str, Any], **fields) -> dict:
    """A copy of ``stub`` whose row will get ``fields`` (inputs are never changed in place)."""
    return dict(stub, add={**stub["add"], **fields})


def removed(stub: Mapping[str, Any], reason: str, kept_doc_id: str | None, **fields) -> dict:
    return with_fields(stub, dedup_reason=reason, dup_kept_doc_id=kept_doc_id, **fields)


def by_row(stub: Mapping[str, Any]):
    """stub -> (fp, ("stub", stub)): to join it with the row or the row's features."""
    return stub["fp"], ("stub", stub)


def tagged(tag: str):
    """(key, value) -> (key, (tag, value)): several inputs in one GroupByKey, read in two passes
    (CoGroupByKey would collect each key's values into lists)."""
    return lambda kv: (kv[0], (tag, kv[1]))


def first_tagged(values, tag: str):
    for t, value in values:
        if t == tag:
            return value
    return None


def joined(values):
    """(row, stub) for each stub of one group of [("row", row), ("stub", stub), ...]."""
    row = first_tagged(values, "row")
    for tag, stub in values:
        if tag == "stub":
            yield row, stub


def count(name: str):
    return lambda _: (name, 1)


class MergeStats(beam.CombineFn):
    """(name, value) pairs -> {name: total}; names starting with "max_" keep the maximum."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, element):
        name, value = element
        if name.startswith("max_"):
            acc[name] = max(acc.get(name, value), value)
        else:
            acc[name] = acc.get(name, 0) + value
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for item in acc.items():
                self.add_input(out, item)
        return out

    def extract_output(self, acc):
        return dict(sorted(acc.items()))
