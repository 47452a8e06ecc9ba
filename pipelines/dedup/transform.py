"""``Deduplicate``: document dicts -> {"kept", "removed", "rejected", "stats"} (URL, MinHash, lines).

Each valid row is split once into its *stub* (ids, keep-policy keys, fingerprint: see
``pipelines.dedup.common``) and the row itself keyed by its fingerprint.  The steps shuffle only
stubs, line keys and signatures, which are computed from the texts where the rows are; the rows
are shuffled once, at the end, when ``JoinBack`` applies every decision (added columns, cut
lines, the minimum length re-check) to them.
"""
from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from filters.dedup.policy import fingerprint
from pipelines.dedup.common import MergeStats, by_row, count, joined, make_stub, tagged
from pipelines.dedup.lines import DedupLines, cut, is_removed
from pipelines.dedup.minhash import DedupMinHash
from pipelines.dedup.url import DedupByUrl
from pipelines.schema import row_doc_id
from pipelines.writers import dead_letter

KEPT_FIELDS = [pa.field("dup_cluster_id", pa.string()), pa.field("dup_cluster_size", pa.int64()),
               pa.field("dup_lines_removed", pa.int64())]
REMOVED_FIELDS = [pa.field("dedup_reason", pa.string()), pa.field("dup_kept_doc_id", pa.string())]
ADDED_COLUMNS = {f.name for f in KEPT_FIELDS + REMOVED_FIELDS}
STEPS = ("url", "minhash", "lines")


def _prepare(row: Mapping[str, Any]):
    """Validate one input row and give it a doc_id; bad rows become dead letters."""
    text, url = row.get("text"), row.get("url")
    reason = None
    if not isinstance(text, str):
        reason = "missing_text"
    elif url is not None and not isinstance(url, str):
        reason = "bad_url"
    if reason:
        yield pvalue.TaggedOutput("rejected", dead_letter(
            "dedup", reason, f"doc_id={row.get('doc_id')!r}", warc_file=row.get("warc_file"),
            warc_offset=row.get("warc_offset"), warc_record_id=row.get("warc_record_id"), url=url,
            doc_id=row.get("doc_id")))
        return
    doc = {k: v for k, v in row.items() if k not in ADDED_COLUMNS}
    doc["doc_id"] = row_doc_id(doc.get("doc_id"), url, text)
    yield doc


def _split(doc: Mapping[str, Any], quality_column: str | None, url: bool = True, node: bool = True):
    """doc -> (fp, doc) (main) and its stub ("stubs"; with the URL / MinHash fields only when
    that step runs)."""
    fp = fingerprint(doc)
    yield fp, doc
    yield pvalue.TaggedOutput("stubs", make_stub(doc, fp, quality_column, url=url, node=node))


class JoinBack(beam.DoFn):
    """(fp, [("row", row), ("stub", stub), ...]) -> the row with each stub's decisions: kept (main)
    or "removed"; "stats" of the lines cut here (when lines ran last)."""

    def __init__(self, min_line_chars: int, min_doc_chars_after: int, lines_on: bool, minhash_on: bool):
        self.min_line_chars = min_line_chars
        self.min_doc_chars_after = min_doc_chars_after
        self.lines_on = lines_on
        self.minhash_on = minhash_on

    def apply(self, row: Mapping[str, Any], stub: Mapping[str, Any]) -> tuple[dict, bool, list]:
        """-> (the final row, whether it is removed, stats of the lines cut here)."""
        stats: list = []
        out = row
        if stub["drops"] is not None:
            out, stub, stats = cut(row, stub, self.min_line_chars, self.min_doc_chars_after)
        final = {**out, **stub["add"]}
        if is_removed(stub):
            return final, True, stats
        # What a disabled step would have added to a kept row.
        if not self.lines_on:
            final["dup_lines_removed"] = 0
        if not self.minhash_on:
            final["dup_cluster_id"], final["dup_cluster_size"] = final["doc_id"], 1
        return final, False, stats

    def apply_all(self, values):
        """(final row, is removed, stats) for each stub of one group of ``[("row", (fp, row)),
        ("stub", stub), ...]`` holding several rows (an output shard): rows joined by ``fp``."""
        rows = {}
        for tag, value in values:
            if tag == "row":
                rows.setdefault(value[0], value[1])
        for tag, stub in values:
            if tag == "stub":
                yield self.apply(rows[stub["fp"]], stub)

    def process(self, element):
        _, values = element
        for row, stub in joined(values):
            final, is_gone, stats = self.apply(row, stub)
            for item in stats:
                yield pvalue.TaggedOutput("stats", item)
            yield pvalue.TaggedOutput("removed", final) if is_gone else final


class Deduplicate(beam.PTransform):
    """document dicts -> {"kept", "removed", "rejected", "stats"} (see ``pipelines.dedup``).

    ``cfg`` is the whole config (``load_config()``) or just its ``dedup`` section.
    """

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        self.cfg = dict(cfg["dedup"] if "dedup" in cfg else cfg)
        # Fail at construction, not inside a worker, on bad values.
        self.url = DedupByUrl(self.cfg["url"]) if self.cfg["url"]["enabled"] else None
        self.lines = DedupLines(self.cfg["lines"]) if self.cfg["lines"]["enabled"] else None
        self.quality_column = self.cfg["keep"]["quality_column"]
        self.minhash = (DedupMinHash(self.cfg["minhash"], self.quality_column)
                        if self.cfg["minhash"]["enabled"] else None)
        order = list(self.cfg.get("order") or [])
        if sorted(order) != sorted(STEPS):
            raise ValueError(f"dedup.order must list each of {', '.join(STEPS)} once, got {order}")
        self.order = order
        steps = {"url": self.url, "lines": self.lines, "minhash": self.minhash}
        enabled = [name for name in order if steps[name] is not None]
        if self.lines is not None:
            # A step after lines must see the shortened texts: cut them there, not at the end.
            self.lines.apply_now = enabled[-1] != "lines"

    def join_back(self) -> JoinBack:
        lines_cfg = self.cfg["lines"]
        return JoinBack(int(lines_cfg["min_line_chars"]), int(lines_cfg["min_doc_chars_after"]),
                        self.lines is not None, self.minhash is not None)

    def decide(self, rows):
        """rows -> ((fp, row) of every valid row, the final stubs (PCollections: kept stubs first,
        then removed ones), stats PCollections, rejected rows).  Call inside a composite
        transform: the labels are not prefixed."""
        prepared = rows | "Prepare" >> beam.FlatMap(_prepare).with_outputs("rejected", main="docs")
        split = (prepared.docs
                 | "Split" >> beam.FlatMap(_split, self.quality_column, self.url is not None,
                                           self.minhash is not None).with_outputs("stubs", main="rows"))
        keyed_rows, stubs = split.rows, split.stubs
        removed, stats = [], [stubs | "CountInput" >> beam.Map(count("input_docs")),
                              prepared.rejected | "CountRejected" >> beam.Map(count("rejected"))]
        cut_texts = None
        for name in self.order:
            if name == "url" and self.url is not None:
                result = stubs | "DedupUrl" >> self.url
            elif name == "minhash" and self.minhash is not None:
                features = (keyed_rows
                            | "MinHashTexts" >> beam.MapTuple(lambda fp, row: (fp, row["text"]))
                            | "MinHashFeatures" >> self.minhash.features(0))
                if cut_texts is not None:
                    features = ((features, cut_texts | "CutTextFeatures" >> self.minhash.features(1))
                                | "AllFeatures" >> beam.Flatten())
                result = (stubs, features) | "DedupMinHash" >> self.minhash
            elif name == "lines" and self.lines is not None:
                result = (stubs, keyed_rows) | "DedupLines" >> self.lines
                cut_texts = result["texts"]
            else:
                continue
            stubs = result["kept"]
            removed.append(result["removed"])
            stats.append(result["stats"])
        return keyed_rows, [stubs] + removed, stats, prepared.rejected

    def decisions(self) -> "Decisions":
        """``rows | Decisions`` -> ``decide``'s result under this transform's labels, for a caller
        that joins the decisions to the rows itself (in the same shuffle as its own grouping)."""
        return Decisions(self)

    def expand(self, rows):
        keyed_rows, final, stats, rejected = self.decide(rows)
        parts = [keyed_rows | "TagRows" >> beam.Map(tagged("row"))]
        parts += [s | f"KeyStubs{i}" >> beam.Map(by_row) for i, s in enumerate(final)]
        joined = (tuple(parts)
                  | "FlattenJoinBack" >> beam.Flatten()
                  | "GroupJoinBack" >> beam.GroupByKey()
                  | "JoinBack" >> beam.ParDo(self.join_back()).with_outputs("removed", "stats", main="kept"))
        stats += [joined.stats, joined.kept | "CountKept" >> beam.Map(count("kept"))]
        stats_all = (tuple(stats) | "AllStats" >> beam.Flatten()
                     | "MergeStats" >> beam.CombineGlobally(MergeStats()))
        return {"kept": joined.kept, "removed": joined.removed, "rejected": rejected, "stats": stats_all}


class Decisions(beam.PTransform):
    """rows -> {"rows": (fp, row) of every valid row, "stubs": the final stubs (a list of
    PCollections), "stats": a list of stats PCollections, "rejected"}: ``Deduplicate.decide`` as a
    composite.  The caller applies the stubs to the rows with ``Deduplicate.join_back()`` (e.g.
    ``JoinBack.apply_all`` per output shard) and adds ``("kept", n)`` to the stats."""

    def __init__(self, dedup: Deduplicate):
        super().__init__()
        self.dedup = dedup

    def expand(self, rows):
        keyed_rows, final, stats, rejected = self.dedup.decide(rows)
        return {"rows": keyed_rows, "stubs": final, "stats": stats, "rejected": rejected}
