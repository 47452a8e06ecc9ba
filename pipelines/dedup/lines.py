"""Line-level dedup the C4 way: no global set, no side input, no text in a shuffle.

1. each document's distinct line keys (``filters.dedup.lines``), computed where its text is and
   joined by row fingerprint to a marker of its stub (the doc_id alone: the stubs themselves go
   straight to step 3), become (line key, doc_id) pairs, typed ``Tuple[bytes, str]`` so that
   the runner moves them with its bytes and string coders (no type tags);
2. GroupByKey on the line key counts the documents holding it; a line in >= min_docs documents
   is marked for removal in all of them except one owner (smallest doc_id) when
   keep_one_occurrence is set (C4 keeps one owner per line);
3. (doc_id, line key) removals join back to the stubs with CoGroupByKey on doc_id; each stub
   keeps the keys of its lines to cut (``drops``).

The lines are cut, and the document re-checked against the minimum length, where the text is:
in ``JoinBack`` at the end when lines is the last step (the default), else right here
(``ApplyDrops``, one join with the rows) so that the following steps see the shortened text.
"""
from __future__ import annotations

import typing
from typing import Any, Mapping

import apache_beam as beam
from apache_beam import pvalue

from filters.dedup.lines import cut_lines, line_keys, pack_keys, too_short, unpack_keys
from filters.dedup.policy import REASON_DUP_ID, REASON_LINES
from pipelines.dedup.common import by_row, first_tagged, joined, removed, tagged, with_fields


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


def _doc_marker(stub):
    """stub -> (fp, ("doc", doc_id)): what the line keys of its row are joined with."""
    return stub["fp"], ("doc", stub["doc_id"])


def _by_doc_id(stub):
    return stub["doc_id"], stub


def _emit_line_keys(element):
    """(fp, [("keys", packed), ("doc", doc_id), ...]) -> (line key, doc_id) for each doc marker
    (one per stub of the row)."""
    _, values = element
    packed = first_tagged(values, "keys") or b""
    keys = unpack_keys(packed)
    for tag, doc_id in values:
        if tag != "doc":
            continue
        for key in keys:
            yield key, doc_id


def _row_line_keys(fp_row, min_line_chars: int):
    """(fp, row) -> (fp, ("keys", packed line keys)), computed where the rows are (no shuffle)."""
    fp, row = fp_row
    return fp, ("keys", pack_keys(line_keys(row["text"], min_line_chars)))


def _attach_drops(element):
    _, groups = element
    stubs = groups["doc"]
    if not stubs:
        return
    stubs = sorted(stubs, key=lambda s: s["fp"])  # rows sharing one doc_id: normally exactly one
    for dup in stubs[1:]:
        yield pvalue.TaggedOutput("removed", removed(dup, REASON_DUP_ID, dup["doc_id"]))
        yield pvalue.TaggedOutput("stats", ("duplicate_doc_id", 1))
    drop = sorted(set(groups["drop"]))  # bounded by one document's lines
    if not drop:
        yield with_fields(stubs[0], dup_lines_removed=0)
    else:
        yield dict(stubs[0], drops=pack_keys(drop))


def cut(row: Mapping[str, Any], stub: Mapping[str, Any], min_line_chars: int, min_doc_chars_after: int):
    """-> (the row with the stub's lines cut, the stub, stats).

    The first time a stub's lines are cut its decision is taken and recorded on the stub:
    ``dup_lines_removed``, or removal as too short (``dedup_reason`` set); later cuts of the same
    stub (at the join back) only rebuild the text.
    """
    text, dropped = cut_lines(row["text"], set(unpack_keys(stub["drops"])), min_line_chars)
    out = dict(row, text=text, dup_lines_removed=dropped)
    if "text_chars" in out:
        out["text_chars"] = len(text)
    if "dup_lines_removed" in stub["add"]:
        return out, stub, []
    stats = [("lines_removed", dropped), ("docs_with_lines_removed", 1)]
    if too_short(text, min_doc_chars_after):
        stats.append(("line_too_short_removed", 1))
        return out, removed(stub, REASON_LINES, None, dup_lines_removed=dropped), stats
    return out, with_fields(stub, dup_lines_removed=dropped), stats


def is_removed(stub: Mapping[str, Any]) -> bool:
    return "dedup_reason" in stub["add"]


class _ApplyDrops(beam.DoFn):
    """(fp, [("row", row), ("stub", s), ...]) -> re-checked stubs (+ (fp, text) of the kept ones
    for the next text-reading step)."""

    def __init__(self, min_line_chars: int, min_doc_chars_after: int):
        self.min_line_chars = min_line_chars
        self.min_doc_chars_after = min_doc_chars_after

    def process(self, element):
        fp, values = element
        for row, stub in joined(values):
            out, stub, stats = cut(row, stub, self.min_line_chars, self.min_doc_chars_after)
            for item in stats:
                yield pvalue.TaggedOutput("stats", item)
            if is_removed(stub):
                yield pvalue.TaggedOutput("removed", stub)
            else:
                yield stub
                yield pvalue.TaggedOutput("texts", (fp, out["text"]))


def _has_drops(stub) -> bool:
    return stub["drops"] is not None


class DedupLines(beam.PTransform):
    """(stubs, rows by fp) -> {"kept", "removed", "stats", "texts"}.

    Kept stubs get ``dup_lines_removed`` or ``drops``.  With ``apply_now`` (set by
    ``Deduplicate`` when another step follows) the lines are cut here
    (the stubs with drops are re-checked and "texts" holds (fp, shortened text) of the kept ones
    that lost lines, for a following MinHash step); else ``JoinBack`` cuts them and "texts" is
    None.
    """

    def __init__(self, line_cfg: Mapping[str, Any]):
        super().__init__()
        self.min_docs = int(line_cfg["min_docs"])
        self.keep_one = bool(line_cfg["keep_one_occurrence"])
        self.min_line_chars = int(line_cfg["min_line_chars"])
        self.min_doc_chars_after = int(line_cfg["min_doc_chars_after"])
        if self.min_docs < 2:
            raise ValueError(f"dedup.lines.min_docs must be >= 2, got {self.min_docs}")
        self.apply_now = False

    def expand(self, inputs):
        stubs, rows = inputs
        line_docs = ((rows | "LineKeys" >> beam.Map(_row_line_keys, self.min_line_chars),
                      stubs | "DocMarkerByRow" >> beam.Map(_doc_marker))
                     | "FlattenLineKeys" >> beam.Flatten()
                     | "JoinLineKeys" >> beam.GroupByKey()
                     | "EmitLineKeys" >> beam.FlatMap(_emit_line_keys)
                     .with_output_types(typing.Tuple[bytes, str]))
        marks = (line_docs
                 | "GroupByLine" >> beam.GroupByKey()
                 | "MarkRepeated" >> beam.ParDo(_MarkRepeatedLines(self.min_docs, self.keep_one))
                 .with_outputs("stats", main="drops"))
        out = ({"doc": stubs | "KeyStubByDoc" >> beam.Map(_by_doc_id), "drop": marks.drops}
               | "JoinDrops" >> beam.CoGroupByKey()
               | "AttachDrops" >> beam.FlatMap(_attach_drops).with_outputs("removed", "stats", main="kept"))
        kept, removed_parts, stats = out.kept, [out.removed], [marks.stats, out.stats]
        texts = None
        if self.apply_now:
            cut = ((rows | "TagRows" >> beam.Map(tagged("row")),
                    kept | "WithDrops" >> beam.Filter(_has_drops)
                    | "KeyCutByRow" >> beam.Map(by_row))
                   | "FlattenCut" >> beam.Flatten()
                   | "JoinRowsToCut" >> beam.GroupByKey()
                   | "ApplyDrops" >> beam.ParDo(_ApplyDrops(self.min_line_chars, self.min_doc_chars_after))
                   .with_outputs("removed", "stats", "texts", main="kept"))
            uncut = kept | "WithoutDrops" >> beam.Filter(lambda s: not _has_drops(s))
            kept = (uncut, cut.kept) | "AllKeptLines" >> beam.Flatten()
            removed_parts.append(cut.removed)
            stats.append(cut.stats)
            texts = cut.texts
        return {"kept": kept, "removed": tuple(removed_parts) | "LinesRemoved" >> beam.Flatten(),
                "stats": tuple(stats) | "LineStats" >> beam.Flatten(), "texts": texts}
