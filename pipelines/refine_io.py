"""The refine stage's Parquet: its schemas, the reader of any documents Parquet, and the writers.

* Schemas: the kept rows are the document schema + every signal column + robots fields + what
  refine adds (C4 lines removed, PII redactions); removed rows add the decision columns.
* ``ReadParquet`` (``list_splits`` -> ``read_split``; ``read_parquet_rows`` for one file in one
  process): any Parquet with ``url`` and ``text``, through Beam's FileSystems (gs://, s3://).
  Each file's footer gives ``SPLIT_ROWS``-row slices of its row groups; the slices, not the rows,
  are spread over the workers.  Unknown columns are dropped and counted, bad rows and files
  become dead letters (``REJECTED`` output, the one shape of ``pipelines.writers.dead_letter``),
  never a crash.  (Reads like ``pipelines.inputs.read_parquet``, per row-group slice.)  A row
  group that will not decode is one ``corrupt_file`` dead letter; the rows before the break
  stand, and the file's other row groups are read.
* ``_write`` / ``write_rejected``: ``pipelines.writers``' sharded writer (``shard_of`` on the
  doc_id; sorted inside each file), so the output is byte-identical for any number of workers.
  ``write_joined`` (refine with dedup): dedup's decisions are applied in the writer's grouping by
  output shard (``JoinWriteShardFn``), so the rows are shuffled once.  Both move every row, stub
  and removed row through their GroupByKey as one packed bytes value (``pipelines.packed``:
  pickle + zstd, about half the bytes of the row dict), unpacked by the writer; a value that does
  not unpack fails the shard's write loudly (a bug: never a file silently missing a row).
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping, NamedTuple

import apache_beam as beam
import pyarrow as pa

from pipelines.packed import KV_BYTES, PackedValueError, RowCodec, unpack
from pipelines.schema import REQUIRED_INPUT_COLUMNS, doc_id_for, extend, row_doc_id
from pipelines.writers import (PARQUET_OPTIONS, WriteDeadLettersFn, WriteSharded, WriteShardFn, dead_letter,
                               packed_by_shard, part_name, shard_of)

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


# Rows per read split (one element of the read): the row groups this project writes
# (``pipelines.writers``) are read whole, once each; a larger foreign row group is read in slices,
# each decoding its row group from the start up to its end (the cost of skipping), so a slice is
# a trade of parallelism against that decoding.  Record batches of BATCH_ROWS rows bound memory.
SPLIT_ROWS = PARQUET_OPTIONS["row_group_size"]
BATCH_ROWS = 1000
MAX_SPLITS_PER_ROW_GROUP = 4


def _batch_rows_for(split_rows: int) -> int:
    return BATCH_ROWS if split_rows % BATCH_ROWS == 0 else split_rows


class Split(NamedTuple):
    """Rows ``[first, stop)`` of row group ``row_group`` of ``path``, whose first row is row
    ``base`` of the file: what one element of the read reads (``list_splits``, ``read_split``)."""
    path: str
    row_group: int
    first: int
    stop: int
    base: int


def _open(path: str):
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path)


def _problem(path: str, exc: BaseException, index: int | None, reason: str) -> dict:
    return _rejected(path, index, None, reason, f"{type(exc).__name__}: {exc}"[:500])


def list_splits(path: str, split_rows: int = SPLIT_ROWS) -> Iterable[tuple[str, Any]]:
    """``("split", Split)`` for every ``split_rows`` rows of every row group of one file (from its
    footer: no data is read), ``("dropped_column", name)`` for each column refine does not know,
    or one ``("rejected", dict)`` for a file that cannot be opened, lacks ``url``/``text`` or has
    a column that cannot be cast to refine's type (then no split)."""
    import pyarrow.parquet as pq

    try:
        fh = _open(path)
    except Exception as exc:  # noqa: BLE001 - missing, no access
        yield "rejected", _problem(path, exc, None, "unreadable_file")
        return
    try:
        try:
            meta = pq.ParquetFile(fh)
            schema, metadata = meta.schema_arrow, meta.metadata
        except Exception as exc:  # noqa: BLE001 - not Parquet
            yield "rejected", _problem(path, exc, None, "unreadable_file")
            return
    finally:
        fh.close()
    repeated = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if repeated:   # pyarrow cannot name such a column: one dead letter for the file
        yield "rejected", _rejected(path, None, None, "unreadable_file",
                                    f"column name(s) appear more than once: {', '.join(repeated)}")
        return
    missing = [c for c in REQUIRED_INPUT_COLUMNS if c not in schema.names]
    if missing:
        yield "rejected", _rejected(path, None, None, "missing_columns",
                                    f"input needs columns {', '.join(REQUIRED_INPUT_COLUMNS)}; missing "
                                    f"{', '.join(missing)}")
        return
    known = input_schema()
    for name in schema.names:
        if known.get_field_index(name) < 0:
            yield "dropped_column", name
            continue
        source, target = schema.field(name).type, known.field(name).type
        if source != target:
            try:   # a type that can never become refine's: one dead letter for the file
                pa.array([], type=source).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                yield "rejected", _rejected(path, 0, None, "bad_column_type",
                                            f"column {name}: {source} cannot become {target}: {exc}")
                return
    base = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        # Each split decodes its row group from the start: a foreign file's huge row group is cut
        # into at most MAX_SPLITS_PER_ROW_GROUP splits, so it is decoded at most that many times.
        # (A whole number of split_rows, so record batches never straddle a split boundary.)
        step = split_rows * max(1, -(-(-(-rows // split_rows)) // MAX_SPLITS_PER_ROW_GROUP))
        for first in range(0, rows, step):
            yield "split", Split(path, group, first, min(rows, first + step), base + first)
        base += rows


def _split_batches(split: Split, columns: list[str], split_rows: int):
    """The record batches of ``split`` (its row group read from the start, in batches that never
    straddle a split boundary, up to the split's end; only the split's batches are yielded); then
    ``("break", (row, exc))`` when the row group stops decoding at ``row`` (relative to the row
    group) inside or before the split."""
    import pyarrow.parquet as pq

    with _open(split.path) as fh:
        pfile = pq.ParquetFile(fh)
        names = [n for n in pfile.schema_arrow.names if n in columns]
        batches = pfile.iter_batches(batch_size=_batch_rows_for(split_rows), row_groups=[split.row_group],
                                     columns=names)
        pos = 0
        while pos < split.stop:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - a corrupt page: what was read stands
                yield "break", (pos, exc)
                return
            if pos >= split.first:
                yield "batch", batch
            pos += batch.num_rows


def read_split(split: Split, split_rows: int = SPLIT_ROWS) -> Iterable[tuple[str, Any]]:
    """``("row", dict)`` or ``("rejected", dict)`` for the rows of one split.  A row group that
    breaks gives one ``corrupt_file`` dead letter (row: the first row of the batch that would not
    decode), from the split holding that row; the rows before it are kept, those after it in the
    same row group lost, other row groups read as usual."""
    known = input_schema()
    index = split.base
    try:
        for kind, value in _split_batches(split, known.names, split_rows):
            if kind == "break":
                pos, exc = value
                if pos >= split.first:   # else a split before this one reports the break
                    yield "rejected", _problem(split.path, exc, split.base - split.first + pos, "corrupt_file")
                return
            yield from _batch_rows(split.path, value, known, index)
            index += value.num_rows
    except Exception as exc:  # noqa: BLE001 - the file vanished or changed since it was listed
        yield "rejected", _problem(split.path, exc, index, "unreadable_file")


def _batch_rows(path: str, batch: pa.RecordBatch, known: pa.Schema, index: int) -> Iterable[tuple[str, Any]]:
    columns = {}
    for name in batch.schema.names:
        column = batch.column(name)
        target = known.field(name).type
        if column.type != target:
            try:
                column = column.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                if batch.num_rows > 1:   # one bad value: the batch's other rows are read one by one
                    for i in range(batch.num_rows):
                        yield from _batch_rows(path, batch.slice(i, 1), known, index + i)
                    return
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


def read_parquet_rows(path: str, split_rows: int = SPLIT_ROWS) -> Iterable[tuple[str, Any]]:
    """``("row", dict)``, ``("rejected", dict)`` or ``("dropped_column", name)`` for one file: its
    splits read in order (what the pipeline's read does, in one process)."""
    for kind, value in list_splits(path, split_rows):
        if kind == "split":
            yield from read_split(value, split_rows)
        else:
            yield kind, value


class ListSplitsFn(beam.DoFn):
    """path -> its splits (main), dead letters (``REJECTED``) and dropped columns (``STATS``)."""

    def __init__(self, split_rows: int = SPLIT_ROWS):
        self.split_rows = split_rows

    def process(self, path: str):
        for kind, value in list_splits(path, self.split_rows):
            if kind == "split":
                yield tuple(value)
            elif kind == "rejected":
                yield beam.pvalue.TaggedOutput(REJECTED, value)
            else:
                yield beam.pvalue.TaggedOutput(STATS, {"dropped_column": value})


class ReadSplitFn(beam.DoFn):
    """split -> its rows (main) and dead letters (``REJECTED``)."""

    def __init__(self, split_rows: int = SPLIT_ROWS):
        self.split_rows = split_rows

    def process(self, split):
        for kind, value in read_split(Split(*split), self.split_rows):
            if kind == "row":
                yield value
            else:
                yield beam.pvalue.TaggedOutput(REJECTED, value)


class ReadParquet(beam.PTransform):
    """Parquet paths -> {"rows", REJECTED, STATS}: the files spread over workers, each file's
    footer listed into ``split_rows``-row splits of its row groups, the splits spread again (small
    descriptors, not rows) and each read where it lands, so rows are never shuffled just to spread
    them."""

    def __init__(self, split_rows: int | None = None):
        super().__init__()
        self.split_rows = int(split_rows or SPLIT_ROWS)

    def expand(self, paths):
        listed = (paths
                  | "SpreadFiles" >> beam.Reshuffle()
                  | "ListSplits" >> beam.ParDo(ListSplitsFn(self.split_rows)).with_outputs(REJECTED, STATS,
                                                                                          main="splits"))
        read = (listed.splits
                | "SpreadSplits" >> beam.Reshuffle()
                | "ReadSplit" >> beam.ParDo(ReadSplitFn(self.split_rows)).with_outputs(REJECTED, main="rows"))
        rejected = (listed[REJECTED], read[REJECTED]) | "ReadRejected" >> beam.Flatten()
        return {"rows": read.rows, REJECTED: rejected, STATS: listed[STATS]}


# ---------------------------------------------------------------------------------------- writing
def _row_order(row: Mapping[str, Any]):
    return (row["doc_id"], row.get("url") or "", row.get("warc_file") or "", row.get("warc_offset") or -1,
            row.get("text") or "")


def _write(pcoll, label: str, output: str, subdir: str, shards: int, schema: pa.Schema):
    """Rows -> ``shards`` Parquet files by doc_id (``pipelines.writers``); the names written."""
    return pcoll | f"Write{label}" >> WriteSharded(output, subdir, shards, schema, _row_order)


def row_codecs(kept: pa.Schema, removed: pa.Schema) -> dict[str, RowCodec]:
    """The codecs of ``write_joined``'s rows (by the columns their writer writes): dedup's input
    rows (``"row"``) by the kept schema, the rows the filters removed by the removed schema."""
    return {"row": RowCodec(kept.names), "removed": RowCodec(removed.names)}


class JoinWriteShardFn(beam.DoFn):
    """(shard, [pack(("row", (fp, row))), pack(("stub", stub)), pack(("removed", row)), ...]) -> the
    shard's kept and removed files: the values unpacked (``pipelines.packed``; one that does not
    unpack raises ``PackedValueError``: the shard fails, never a file without the row), dedup's
    decisions (stubs) applied to the rows (``JoinBack.apply_all``), the kept ones through
    ``finish_kept``, the removed ones through ``finish_removed`` and with the rows the filters
    removed.  Yields the names written (kept: main; removed: ``REMOVED``) and dedup's stats
    (``STATS``: the lines cut here, ``("kept", n)``)."""

    def __init__(self, join, finish_kept, finish_removed, output: str, shards: int, kept: pa.Schema,
                 removed: pa.Schema):
        self.join, self.finish_kept, self.finish_removed = join, finish_kept, finish_removed
        self.writers = {"kept": WriteShardFn(output, "", shards, kept, _row_order),
                        REMOVED: WriteShardFn(output, "removed", shards, removed, _row_order)}
        self.codecs = row_codecs(kept, removed)

    def decode(self, packed: bytes) -> tuple[str, Any]:
        """One packed value -> ``(tag, value)`` with its row decoded (``write_joined`` encodes)."""
        try:
            tag, value = unpack(packed)
            if tag == "row":
                fp, row = value
                return tag, (fp, self.codecs["row"].decode(row))
        except PackedValueError:
            raise
        except (TypeError, ValueError) as exc:   # not a (tag, value) or not a ("row", (fp, row))
            raise PackedValueError(f"not a packed (tag, value) of the joined writer: {exc}"[:300]) from exc
        if tag == "removed":
            return tag, self.codecs["removed"].decode(value)
        return tag, value

    def process(self, element):
        shard, packed = element
        values = [self.decode(v) for v in packed]
        out: dict[str, list] = {"kept": [], REMOVED: [v for tag, v in values if tag == "removed"]}
        for final, is_gone, stats in self.join.apply_all(values):
            for item in stats:
                yield beam.pvalue.TaggedOutput(STATS, item)
            if is_gone:
                out[REMOVED].append(self.finish_removed(final))
            else:
                out["kept"].append(self.finish_kept(final))
        if out["kept"]:
            yield beam.pvalue.TaggedOutput(STATS, ("kept", len(out["kept"])))
        for kind, rows in out.items():
            if rows:  # like a GroupByKey per output: no file for a shard without rows
                for name in self.writers[kind].process((shard, rows)):
                    yield name if kind == "kept" else beam.pvalue.TaggedOutput(REMOVED, name)


def write_joined(decisions: Mapping[str, Any], removed, join, finish_kept, finish_removed, output: str,
                 shards: int, kept: pa.Schema, removed_schema: pa.Schema):
    """Dedup's rows and decisions plus the rows the filters removed -> the kept and removed files,
    in one GroupByKey by output shard (the rows cross one shuffle: the join back to the decisions
    is the writer's grouping).  -> (kept names, removed names, dedup stats)."""
    codecs = row_codecs(kept, removed_schema)

    def by_shard(pcoll, label: str, tag: str):
        return pcoll | label >> beam.Map(packed_by_shard(tag, shards, codecs.get(tag))).with_output_types(KV_BYTES)

    parts = [by_shard(decisions["rows"], "RowsByShard", "row"), by_shard(removed, "RemovedByShard", "removed")]
    parts += [by_shard(s, f"StubsByShard{i}", "stub") for i, s in enumerate(decisions["stubs"])]
    written = (tuple(parts)
               | "FlattenShards" >> beam.Flatten()
               | "GroupShards" >> beam.GroupByKey()
               | "JoinAndWrite" >> beam.ParDo(JoinWriteShardFn(join, finish_kept, finish_removed, output, shards,
                                                               kept, removed_schema))
               .with_outputs(REMOVED, STATS, main="kept"))
    return written.kept, written[REMOVED], written[STATS]


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
