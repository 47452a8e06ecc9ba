"""Every stage's output files: atomic writes, Parquet/JSON bytes, the sharded Parquet writer and
the dead-letter records, through Beam's FileSystems (local, gs://, s3://).

* Files are built in memory for one output shard (bounded: one shard's rows), written to a
  temporary name next to the target and renamed, so a reader never sees a half-written file under
  its final name.  Rows are sorted by a caller-given key so bundle order never leaks into bytes.
* :class:`WriteSharded` moves each row through its GroupByKey as one packed bytes value
  (``pipelines.packed``: pickle + zstd, about half the bytes of the row dict, Beam's bytes coder)
  and unpacks it in the writer; a value that does not unpack fails the write loudly (a bug, never
  a silently missing row).
* :func:`shard_of` is the one row -> shard function: the first 15 hex digits of the doc_id (a
  sha256 hex prefix, see ``tokenization.dochash``) modulo the shard count; a key that is not hex
  is hashed with ``doc_id_for`` first.  (It is refine's historical function, kept so refine's
  output bytes do not change.)
* Dead letters (every stage; ``DEAD_LETTER_KEYS``): one JSON object per line, keys sorted, every
  key present (null when unknown), files sorted by ``DEAD_LETTER_ORDER`` -- see
  :func:`dead_letter`.  Where they go stays per stage (``dead-letter/`` for extract and tokenize,
  ``rejected/`` for refine), as users know them.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from typing import Any, Callable, Iterable, Mapping, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.packed import KV_BYTES, RowCodec, pack, unpack
from tokenization.dochash import doc_id_for

PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                       write_statistics=True, row_group_size=10_000)
HEX = frozenset("0123456789abcdef")


def join(base: str, *parts: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts)


def write_bytes_atomic(path: str, data: bytes) -> None:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    if "://" in path:
        parent, name = posixpath.split(path)
    else:
        parent, name = os.path.split(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    tmp = FileSystems.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def parquet_bytes(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> bytes:
    table = pa.Table.from_pylist(list(rows), schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, **PARQUET_OPTIONS)
    return buf.getvalue()


def write_parquet(path: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> int:
    write_bytes_atomic(path, parquet_bytes(rows, schema))
    return len(rows)


def jsonl_bytes(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
                    for r in rows)


def write_json(path: str, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def read_json(path: str) -> Any:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return json.loads(fh.read().decode("utf-8"))


# ---------------------------------------------------------------------------------------- shards
def shard_of(key: Any, shards: int) -> int:
    """The shard (0..shards-1) of a row keyed by ``key`` (a doc_id; any value works)."""
    key = "" if key is None else str(key)
    head = key[:15]
    if len(head) == 15 and HEX.issuperset(head):
        return int(head, 16) % shards
    return int(doc_id_for(key)[:15], 16) % shards


def part_name(index: int, shards: int, subdir: str = "", ext: str = "parquet") -> str:
    name = f"part-{index:05d}-of-{shards:05d}.{ext}"
    return f"{subdir}/{name}" if subdir else name


class WriteShardFn(beam.DoFn):
    """``(shard, rows)`` -> ``OUTPUT/[subdir/]part-SSSSS-of-NNNNN.parquet`` (rows sorted by
    ``order``, only the schema's columns); yields the name relative to ``output``.  With
    ``packed``, each row is a ``pipelines.packed.pack`` value, unpacked here (one that does not
    unpack raises ``PackedValueError``: the write fails, no file without the row)."""

    def __init__(self, output: str, subdir: str, shards: int, schema: pa.Schema,
                 order: Callable[[Mapping[str, Any]], Any], packed: bool = False):
        self.output, self.subdir, self.shards, self.schema, self.order = output, subdir, shards, schema, order
        self.packed = packed

    def process(self, element):
        index, rows = element
        rows = sorted((unpack(r) for r in rows) if self.packed else rows, key=self.order)
        name = part_name(index, self.shards, self.subdir)
        names = set(self.schema.names)
        write_parquet(join(self.output, name), [{k: v for k, v in r.items() if k in names} for r in rows],
                      self.schema)
        yield name


def packed_by_shard(tag: str, shards: int, codec: RowCodec | None = None):
    """value -> (its output shard, ``pack((tag, value))``): what a writer's GroupByKey by output
    shard moves (refine's and dedup's join of rows, stubs and removed rows).  The shard is that of
    the value's ``doc_id``; a ``"row"`` value is ``(fp, row)``.  With ``codec`` the row (of a
    ``"row"`` value, or the value itself) is ``codec.encode``-d first: the reader decodes it with
    the same codec (``refine_io.JoinWriteShardFn``)."""
    if tag == "row":
        if codec is not None:
            return lambda fp_row: (shard_of(fp_row[1]["doc_id"], shards),
                                   pack(("row", (fp_row[0], codec.encode(fp_row[1])))))
        return lambda fp_row: (shard_of(fp_row[1]["doc_id"], shards), pack(("row", fp_row)))
    if codec is not None:
        return lambda value: (shard_of(value.get("doc_id"), shards), pack((tag, codec.encode(value))))
    return lambda value: (shard_of(value.get("doc_id"), shards), pack((tag, value)))


class WriteSharded(beam.PTransform):
    """Rows -> ``shards`` Parquet files by ``shard_of(row[key_field])``; a PCollection of the
    names written (relative to ``output``).  Bytes do not depend on workers or bundles as long as
    ``order`` is a total order of the rows.  The rows cross the GroupByKey packed
    (``pipelines.packed``) and are unpacked by the writer."""

    def __init__(self, output: str, subdir: str, shards: int, schema: pa.Schema, order, key_field: str = "doc_id",
                 label: str = ""):
        super().__init__()
        self.args = (output, subdir, shards, schema, order)
        self.key_field, self.label = key_field, label

    def expand(self, rows):
        output, subdir, shards, schema, order = self.args
        lab, key = self.label, self.key_field
        return (rows
                | f"Key{lab}" >> beam.Map(lambda r, n=shards: (shard_of(r.get(key), n), pack(r)))
                .with_output_types(KV_BYTES)
                | f"Group{lab}" >> beam.GroupByKey()
                | f"Write{lab}" >> beam.ParDo(WriteShardFn(output, subdir, shards, schema, order, packed=True)))


# ---------------------------------------------------------------------------------------- dead letters
DEAD_LETTER_KEYS = ("stage", "reason", "detail", "file", "row", "warc_file", "warc_offset", "warc_record_id",
                    "url", "doc_id")
DETAIL_CHARS = 2000


def dead_letter(stage: str, reason: str, detail: str = "", *, file: str | None = None, row: int | None = None,
                warc_file: str | None = None, warc_offset: int | None = None, warc_record_id: str | None = None,
                url: Any = None, doc_id: Any = None) -> dict:
    """One dead-letter record: what could not be processed, by which stage and why.

    ``stage`` / ``reason``: who gave up and a short machine-readable reason; ``detail``: readable,
    at most 2000 characters; ``file``: the input file the stage was reading (a WARC for extract,
    a Parquet file later); ``row``: the row number in that Parquet file (0-based; null for WARC
    input and for problems with the whole file); ``warc_file`` / ``warc_offset`` /
    ``warc_record_id``: where the record came from in the crawl, when known; ``url``, ``doc_id``."""
    return {"stage": stage, "reason": reason, "detail": str(detail or "")[:DETAIL_CHARS],
            "file": file or None,
            "row": row, "warc_file": warc_file, "warc_offset": warc_offset, "warc_record_id": warc_record_id,
            "url": url if isinstance(url, str) else None, "doc_id": doc_id if isinstance(doc_id, str) else None}


def as_dead_letter(record: Mapping[str, Any], stage: str | None = None) -> dict:
    """A record in the one shape, every key checked (an unknown key is a programming error)."""
    fields = dict(record)
    unknown = sorted(k for k in fields if k not in DEAD_LETTER_KEYS)
    if unknown:
        raise ValueError(f"dead letter with unknown keys {unknown}")
    return dead_letter(fields.pop("stage", None) or stage or "unknown", fields.pop("reason", None) or "unknown",
                       fields.pop("detail", "") or "", **fields)


def _neg(v):
    return -1 if v is None else v


def DEAD_LETTER_ORDER(r: Mapping[str, Any]):  # noqa: N802 - a sort key, named like the constant it is
    return (r["file"] or "", _neg(r["row"]), r["warc_file"] or "", _neg(r["warc_offset"]), r["url"] or "",
            r["doc_id"] or "", r["stage"], r["reason"], r["detail"])


def dead_letter_bytes(records: Iterable[Mapping[str, Any]], stage: str | None = None) -> bytes:
    """The one format: JSON lines, keys sorted, records in ``DEAD_LETTER_ORDER``."""
    return jsonl_bytes(sorted((as_dead_letter(r, stage) for r in records), key=DEAD_LETTER_ORDER))


class WriteDeadLettersFn(beam.DoFn):
    """``(key, records)`` -> ``OUTPUT/<subdir>/<name_of(key)>.jsonl``; yields the relative name."""

    def __init__(self, output: str, subdir: str, name_of: Callable[[Any], str], stage: str | None = None):
        self.output, self.subdir, self.name_of, self.stage = output, subdir, name_of, stage

    def process(self, element):
        key, records = element
        name = f"{self.subdir}/{self.name_of(key)}.jsonl"
        write_bytes_atomic(join(self.output, name), dead_letter_bytes(records, self.stage))
        yield name
