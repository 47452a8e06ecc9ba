"""What the dedup steps pass between them: small per-document *stubs*, never the documents.

A stub is a dict with the fields the steps decide on -- ``fp`` (the row's fingerprint: the join
key back to the row and the last tie-break of every keep policy), ``doc_id``, ``url`` and
``urank`` (URL keep policy; only while the URL step is still to run), ``node`` (MinHash node id
= keep policy, as the same-order bytes of ``compact_node``; only while the MinHash step is still
to run) -- plus ``add`` (the columns the steps add to the row: cluster, reason, kept doc_id,
lines removed) and ``drops`` (packed keys of the lines to cut, or None).  A step drops the
fields only it reads from the stubs it outputs, so every later shuffle carries less.  Texts and
the other columns stay in the row, which is shuffled once, at the end (``JoinBack``), where the
decisions are applied to it.  Joins with what is computed from the rows (line keys, signatures)
shuffle a small marker of each stub (its doc_id or node), not the stub.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam

from filters.dedup.policy import NODE_PREFIX, node_key, url_rank

# ``node_key`` is two 17-character keep-policy fields ("0" + 16 lower-case hex digits, or the
# absent value "1" + 16 zeros) and then the doc_id.
_FIELD = NODE_PREFIX // 2
_ABSENT = "1" + "0" * (_FIELD - 1)


def compact_node(node: str) -> bytes:
    """``node_key``'s string as bytes that sort the same way (for any two node ids, ``a < b`` iff
    ``compact_node(a) < compact_node(b)``; about half the bytes through the shuffles): each
    field becomes b"\x01" when absent or b"\x00" + its 8 bytes, then the doc_id in UTF-8."""
    out = []
    for start in (0, _FIELD):
        field = node[start:start + _FIELD]
        if field == _ABSENT:
            out.append(b"\x01")
        elif len(field) == _FIELD and field[0] == "0" and field[1:] == field[1:].lower():
            out.append(b"\x00" + bytes.fromhex(field[1:]))
        else:
            raise ValueError(f"not a node_key field: {field!r}")  # a changed node_key, not bad input
    out.append(node[NODE_PREFIX:].encode("utf-8", "surrogatepass"))
    return b"".join(out)


def compact_node_doc_id(node: bytes) -> str:
    """The doc_id of a ``compact_node`` (``policy.node_doc_id`` of the string)."""
    start = 0
    for _ in range(2):
        start += 1 if node[start] == 1 else 9
    return node[start:].decode("utf-8", "surrogatepass")


def make_stub(doc: Mapping[str, Any], fp: str, quality_column: str | None, *, url: bool = True,
              node: bool = True) -> dict:
    """The stub of ``doc`` whose fingerprint is ``fp``; ``url``/``urank`` only with ``url``
    (the URL step will run), ``node`` only with ``node`` (the MinHash step will run)."""
    stub = {"fp": fp, "doc_id": doc["doc_id"]}
    if url:
        stub["url"], stub["urank"] = doc.get("url"), url_rank(doc)
    if node:
        stub["node"] = compact_node(node_key(doc, quality_column))
    stub["add"], stub["drops"] = {}, None
    return stub


def without(stub: Mapping[str, Any], *names: str) -> dict:
    """A copy of ``stub`` without the fields ``names`` (those a step no longer needs)."""
    return {k: v for k, v in stub.items() if k not in names}


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
