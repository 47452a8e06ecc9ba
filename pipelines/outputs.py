"""Deterministic, atomic output files through Beam's filesystems (local, gs://, s3://).

Files are built in memory for one output shard (bounded: one shard's rows), written to a
temporary name next to the target and renamed, so a reader never sees a half-written file under
its final name.  Rows are sorted by a caller-given key so bundle order never leaks into bytes.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                       write_statistics=True, row_group_size=10_000)


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


def prepare_output(output: str, patterns: Sequence[str], overwrite: bool) -> None:
    """Refuse to mix runs: files of an earlier run in ``output`` need ``--overwrite``, then go."""
    from apache_beam.io.filesystems import FileSystems

    from pipelines.cli import CliError

    existing = [m.path for pattern in patterns
                for m in FileSystems.match([join(output, pattern)])[0].metadata_list]
    if existing and not overwrite:
        raise CliError(f"--output {output} already holds results of an earlier run "
                       f"({len(existing)} files); pass --overwrite or choose another directory")
    if existing:
        FileSystems.delete(existing)
