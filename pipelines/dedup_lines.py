"""Line-level dedup the C4 way: no global set, no side input.

1. every document emits (line hash, doc_id) once per distinct normalised line;
2. GroupByKey on the line hash counts the documents holding it; a line in >= min_docs documents
   is marked for removal in all of them except one owner (smallest doc_id) when
   keep_one_occurrence is set (C4 keeps one owner per line);
3. (doc_id, line hash) removals join back to the documents with CoGroupByKey on doc_id; each
   document drops its marked lines and is re-checked against the minimum length.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
from apache_beam import pvalue

from filters.dedup_text import line_hash, normalize_lines
from pipelines.dedup_common import REASON_DUP_ID, REASON_LINES, fingerprint, removed


def _line_key(normalized: str) -> bytes:
    return line_hash(normalized).to_bytes(8, "big")


def _emit_line_keys(doc: Mapping[str, Any], min_line_chars: int):
    seen = set()  # bounded by one document's lines
    doc_id = doc["doc_id"]
    for norm in normalize_lines(doc["text"]):
        if len(norm) >= min_line_chars:
            key = _line_key(norm)
            if key not in seen:
                seen.add(key)
                yield key, doc_id


class _MarkRepeatedLines(beam.DoFn):
    def __init__(self, min_docs: int, keep_one: bool):
        self.min_docs = min_docs
        self.keep_one = keep_one

    def process(self, element):
        key, doc_ids = element
        count, owner = 0, None
        for doc_id in doc_ids:
            count += 1
            owner = doc_id if owner is None or doc_id < owner else owner
        if count < self.min_docs:
            return
        yield pvalue.TaggedOutput("stats", ("lines_repeated_distinct", 1))
        for doc_id in doc_ids:
            if not (self.keep_one and doc_id == owner):
                yield doc_id, key


def resolve_duplicate_ids(docs):
    """Several rows with one doc_id: keep the one with the smallest row fingerprint."""
    rows = list(docs)  # rows sharing one doc_id: normally exactly one
    if len(rows) == 1:
        return rows[0], []
    rows.sort(key=fingerprint)
    return rows[0], [removed(r, REASON_DUP_ID, r["doc_id"]) for r in rows[1:]]


class _DropLines(beam.DoFn):
    def __init__(self, min_line_chars: int, min_doc_chars_after: int):
        self.min_line_chars = min_line_chars
        self.min_doc_chars_after = min_doc_chars_after

    def process(self, element):
        _, groups = element
        docs = groups["doc"]
        if not docs:
            return
        doc, dups = resolve_duplicate_ids(docs)
        for dup in dups:
            yield pvalue.TaggedOutput("removed", dup)
            yield pvalue.TaggedOutput("stats", ("duplicate_doc_id", 1))
        drop = set(groups["drop"])  # bounded by one document's lines
        if not drop:
            yield dict(doc, dup_lines_removed=0)
            return
        text = doc["text"]
        lines = text.split("\n")
        kept = [line for line, norm in zip(lines, normalize_lines(text))
                if not (len(norm) >= self.min_line_chars and _line_key(norm) in drop)]
        dropped = len(lines) - len(kept)
        new_text = "\n".join(kept)
        yield pvalue.TaggedOutput("stats", ("lines_removed", dropped))
        yield pvalue.TaggedOutput("stats", ("docs_with_lines_removed", 1))
        out = dict(doc, text=new_text, dup_lines_removed=dropped)
        if "text_chars" in out:
            out["text_chars"] = len(new_text)
        if len(new_text.strip()) < self.min_doc_chars_after:
            yield pvalue.TaggedOutput("stats", ("line_too_short_removed", 1))
            yield pvalue.TaggedOutput("removed", removed(out, REASON_LINES, None))
        else:
            yield out


class DedupLines(beam.PTransform):
    """docs -> {"kept", "removed", "stats"}; kept docs get ``dup_lines_removed``."""

    def __init__(self, line_cfg: Mapping[str, Any]):
        super().__init__()
        self.min_docs = int(line_cfg["min_docs"])
        self.keep_one = bool(line_cfg["keep_one_occurrence"])
        self.min_line_chars = int(line_cfg["min_line_chars"])
        self.min_doc_chars_after = int(line_cfg["min_doc_chars_after"])
        if self.min_docs < 2:
            raise ValueError(f"dedup.lines.min_docs must be >= 2, got {self.min_docs}")

    def expand(self, docs):
        marks = (docs
                 | "LineKeys" >> beam.FlatMap(_emit_line_keys, self.min_line_chars)
                 | "GroupByLine" >> beam.GroupByKey()
                 | "MarkRepeated" >> beam.ParDo(_MarkRepeatedLines(self.min_docs, self.keep_one))
                 .with_outputs("stats", main="drops"))
        by_id = docs | "KeyById" >> beam.Map(lambda d: (d["doc_id"], d))
        out = ({"doc": by_id, "drop": marks.drops}
               | "JoinDrops" >> beam.CoGroupByKey()
               | "DropLines" >> beam.ParDo(_DropLines(self.min_line_chars, self.min_doc_chars_after))
               .with_outputs("removed", "stats", main="kept"))
        stats = (marks.stats, out.stats) | "LineStats" >> beam.Flatten()
        return {"kept": out.kept, "removed": out.removed, "stats": stats}
