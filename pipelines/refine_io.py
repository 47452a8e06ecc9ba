"""The refine stage's Parquet: its schemas, the reader of any documents Parquet, and the writers.

* Schemas: the kept rows are the document schema + every signal column + robots fields + what
  refine adds (C4 lines removed, PII redactions); removed rows add the decision columns.
* ``read_parquet_rows`` / ``ReadParquetFn``: any Parquet with ``url`` and ``text``, read with
  ``pipelines.inputs.read_parquet`` (Beam's FileSystems, so gs:// and s3:// work); unknown columns
  are dropped and counted, bad rows and files become dead letters (``REJECTED`` output, the one
  shape of ``pipelines.writers.dead_letter``), never a crash.
* ``_write`` / ``write_rejected``: ``pipelines.writers``' sharded writer (``shard_of`` on the
  doc_id; sorted inside each file), so the output is byte-identical for any number of workers.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa

from pipelines.inputs import read_parquet
from pipelines.schema import REQUIRED_INPUT_COLUMNS, doc_id_for, extend, row_doc_id
from pipelines.writers import WriteDeadLettersFn, WriteSharded, dead_letter, part_name, shard_of

REJECTED = "rejected"
REMOVED = "removed"
STATS = "stats"


# ---------------------------------------------------------------------------------------- schemas
def _robots_fields() -> list[pa.Field]:
    from pipelines.consent import ROBOTS_FIELDS  # required: a missing module fails the stage loudly

    return list(ROBOTS_FIELDS)


REFINE_FIELDS = [
    pa.field("c4_lines_removed", pa.int32()),                     # lines the C4 line rules took out
    pa.field("pii_redacted", pa.map_(pa.string(), pa.int32())),   # redactions applied to kept text
]
DECISION_FIELDS = [
    pa.field("removed_by", pa.string()),        # filter group (language, gopher_quality, ...)
    pa.field("removal_rule", pa.string()),      # group.rule that decided
    pa.field("removal_reason", pa.string()),    # measured value vs threshold, readable
    pa.field("failed_filters", pa.list_(pa.string())),   # every failing group.rule
]


def kept_schema(extra: Iterable[pa.Field] = ()) -> pa.Schema:
    from filters.registry import signal_fields

    return extend([*signal_fields(), *_robots_fields(), *REFINE_FIELDS, *extra])


def removed_schema(extra: Iterable[pa.Field] = ()) -> pa.Schema:
    return extend(DECISION_FIELDS, kept_schema(extra))


def input_schema() -> pa.Schema:
    """Columns refine understands in its input (anything else is dropped and reported)."""
    return kept_schema()


# ---------------------------------------------------------------------------------------- reading
def _rejected(path: str, index: int | None, url: Any, reason: str, detail: str) -> dict:
    return dead_letter("refine", reason, detail, file=path or None, row=index, url=url)


def read_parquet_rows(path: str, batch_rows: int = 1000) -> Iterable[tuple[str, Any]]:
    """``("row", dict)``, ``("rejected", dict)`` or ``("dropped_column", name)`` for one file
    (read with ``pipelines.inputs.read_parquet``)."""
    known = input_schema()
    index = 0
    for kind, value in read_parquet(path, [n for n in known.names], required=REQUIRED_INPUT_COLUMNS,
                                    batch_rows=batch_rows):
        if kind == "problem":
            detail = (f"input needs columns {', '.join(REQUIRED_INPUT_COLUMNS)}; missing {', '.join(value.missing)}"
                      if value.reason == "missing_columns" else value.detail)
            yield "rejected", _rejected(path, index if value.reason == "corrupt_file" else None, None,
                                        value.reason, detail)
            return
        if kind == "schema":
            for name in value.names:
                if known.get_field_index(name) < 0:
                    yield "dropped_column", name
            continue
        columns = {}
        for name in value.schema.names:
            column = value.column(name)
            target = known.field(name).type
            if column.type != target:
                try:
                    column = column.cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    yield "rejected", _rejected(path, index, None, "bad_column_type",
                                                f"column {name}: {column.type} cannot become {target}: {exc}")
                    return
            columns[name] = column
        for row in pa.table(columns).to_pylist():
            url, text = row.get("url"), row.get("text")
            if not isinstance(url, str) or not url:
                yield "rejected", _rejected(path, index, url, "missing_url", "url is null or empty")
            elif not isinstance(text, str):
                yield "rejected", _rejected(path, index, url, "missing_text", "text is null")
            else:
                row["doc_id"] = row_doc_id(row.get("doc_id"), url, text)
                if row.get("pii_counts") is not None:
                    row["pii_counts"] = dict(row["pii_counts"])
                yield "row", row
            index += 1


class ReadParquetFn(beam.DoFn):
    def process(self, path: str):
        for kind, value in read_parquet_rows(path):
            if kind == "row":
                yield value
            elif kind == "rejected":
                yield beam.pvalue.TaggedOutput(REJECTED, value)
            else:
                yield beam.pvalue.TaggedOutput(STATS, {"dropped_column": value})


# ---------------------------------------------------------------------------------------- writing
def _row_order(row: Mapping[str, Any]):
    return (row["doc_id"], row.get("url") or "", row.get("warc_file") or "", row.get("warc_offset") or -1,
            row.get("text") or "")


def _write(pcoll, label: str, output: str, subdir: str, shards: int, schema: pa.Schema):
    """Rows -> ``shards`` Parquet files by doc_id (``pipelines.writers``); the names written."""
    return pcoll | f"Write{label}" >> WriteSharded(output, subdir, shards, schema, _row_order)


def _rejected_file(r: Mapping[str, Any], shards: int) -> int:
    return shard_of(doc_id_for(f"{r['file']}\n{r['row']}\n{r['url']}"), shards)


def write_rejected(rejected, output: str, shards: int):
    """Dead letters -> ``OUTPUT/rejected/part-SSSSS-of-NNNNN.jsonl`` (the one dead-letter format)."""
    return (rejected
            | "KeyRejected" >> beam.Map(lambda r, n=shards: (_rejected_file(r, n), r))
            | "GroupRejected" >> beam.GroupByKey()
            | "WriteRejected" >> beam.ParDo(WriteDeadLettersFn(
                output, "rejected", functools.partial(_part_stem, shards=shards), "refine")))


def _part_stem(index: int, shards: int) -> str:
    return part_name(index, shards, ext="x")[:-2]
