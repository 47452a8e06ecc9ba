"""The refine stage's Parquet: its schemas, the reader of any documents Parquet, and the writers.

* Schemas: the kept rows are the document schema + every signal column + robots fields + what
  refine adds (C4 lines removed, PII redactions); removed rows add the decision columns.
* ``read_parquet_rows`` / ``ReadParquetFn``: any Parquet with ``url`` and ``text`` (Beam's
  FileSystems, so gs:// and s3:// work); unknown columns are dropped and counted, bad rows and files
  become rejected records (``REJECTED`` output), never a crash.
* ``_write``: rows go to a fixed number of files by doc_id hash and are sorted inside each file,
  so the output is byte-identical for any number of workers.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import apache_beam as beam
import pyarrow as pa

from pipelines import outputs
from pipelines.schema import REQUIRED_INPUT_COLUMNS, doc_id_for, extend, row_doc_id

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
    from filters.signals import SIGNAL_FIELDS

    return extend([*SIGNAL_FIELDS, *_robots_fields(), *REFINE_FIELDS, *extra])


def removed_schema(extra: Iterable[pa.Field] = ()) -> pa.Schema:
    return extend(DECISION_FIELDS, kept_schema(extra))


def input_schema() -> pa.Schema:
    """Columns refine understands in its input (anything else is dropped and reported)."""
    return kept_schema()


# ---------------------------------------------------------------------------------------- reading
def _rejected(path: str, index: int | None, url: Any, reason: str, detail: str) -> dict:
    return {"input_file": path, "row": index, "url": url if isinstance(url, str) else None,
            "stage": "refine", "reason": reason, "detail": detail[:500]}


def read_parquet_rows(path: str, batch_rows: int = 1000) -> Iterable[tuple[str, Any]]:
    """``("row", dict)``, ``("rejected", dict)`` or ``("dropped_column", name)`` for one file."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    known = input_schema()
    try:
        fh = FileSystems.open(path)
        pfile = pq.ParquetFile(fh)
    except Exception as exc:  # not Parquet, unreadable, vanished
        yield "rejected", _rejected(path, None, None, "unreadable_file", f"{type(exc).__name__}: {exc}")
        return
    names = pfile.schema_arrow.names
    missing = [c for c in REQUIRED_INPUT_COLUMNS if c not in names]
    if missing:
        yield "rejected", _rejected(path, None, None, "missing_columns",
                                    f"input needs columns {', '.join(REQUIRED_INPUT_COLUMNS)}; "
                                    f"missing {', '.join(missing)}")
        return
    for name in names:
        if known.get_field_index(name) < 0:
            yield "dropped_column", name
    wanted = [n for n in names if known.get_field_index(n) >= 0]
    index = 0
    try:
        for batch in pfile.iter_batches(batch_size=batch_rows, columns=wanted):
            columns = {}
            for name in batch.schema.names:
                column = batch.column(name)
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
    except Exception as exc:  # a corrupt row group: keep what was read, report the rest
        yield "rejected", _rejected(path, index, None, "corrupt_file", f"{type(exc).__name__}: {exc}")
    finally:
        fh.close()


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
def shard_of(doc_id: str, shards: int) -> int:
    return int(doc_id[:15], 16) % shards if all(c in "0123456789abcdef" for c in doc_id[:15]) \
        else int(doc_id_for(doc_id)[:15], 16) % shards


def _row_order(row: Mapping[str, Any]):
    return (row["doc_id"], row.get("url") or "", row.get("warc_file") or "", row.get("warc_offset") or -1,
            row.get("text") or "")


class WriteShardFn(beam.DoFn):
    def __init__(self, output: str, subdir: str, shards: int, schema: pa.Schema):
        self.output = output
        self.subdir = subdir
        self.shards = shards
        self.schema = schema

    def process(self, element):
        index, rows = element
        rows = sorted(rows, key=_row_order)
        name = f"part-{index:05d}-of-{self.shards:05d}.parquet"
        if self.subdir:
            name = f"{self.subdir}/{name}"
        names = set(self.schema.names)
        outputs.write_parquet(outputs.join(self.output, name), [{k: v for k, v in r.items() if k in names}
                                                               for r in rows], self.schema)
        yield name


class WriteRejectedFn(beam.DoFn):
    def __init__(self, output: str, shards: int):
        self.output = output
        self.shards = shards

    def process(self, element):
        index, rows = element
        rows = sorted(rows, key=lambda r: (r["input_file"] or "", r["row"] if r["row"] is not None else -1,
                                           r["url"] or "", r["reason"], r["detail"]))
        name = f"rejected/part-{index:05d}-of-{self.shards:05d}.jsonl"
        outputs.write_bytes_atomic(outputs.join(self.output, name), outputs.jsonl_bytes(rows))
        yield name


def _write(pcoll, label: str, output: str, subdir: str, shards: int, schema: pa.Schema):
    return (pcoll
            | f"Key{label}" >> beam.Map(lambda r, n=shards: (shard_of(r["doc_id"], n), r))
            | f"Group{label}" >> beam.GroupByKey()
            | f"Write{label}" >> beam.ParDo(WriteShardFn(output, subdir, shards, schema)))
