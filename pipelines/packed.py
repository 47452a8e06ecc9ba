"""Rows as one compact ``bytes`` value while they cross a shuffle (a GroupByKey billed per byte).

* :func:`pack` (value -> bytes) and :func:`unpack` (bytes -> an equal value) are exact inverses
  for any picklable value: ``unpack(pack(v)) == v``, same types, same dict key order.  The value is
  pickled (protocol 5); when that is at least ``MIN_COMPRESS`` bytes it is compressed with zstd
  (pyarrow's codec, level ``LEVEL``) and kept compressed only when that is smaller.  Layout: one
  tag byte, ``RAW`` + the pickle, or ``ZSTD`` + the pickle's length (4 bytes, little-endian) +
  the zstd frame.  (Extracted realweb rows of the fast configuration: ~9.7 KB pickled -> ~4.7 KB packed.)
* Only for values this pipeline packed itself, between its own steps (``unpack`` unpickles: never
  give it bytes from outside).  A value that does not unpack (wrong tag, bad length, corrupt zstd
  or pickle) is a bug or a corrupted shuffle, not bad input: ``unpack`` raises
  :class:`PackedValueError`, so the step that reads it fails loudly (the runner retries, then
  fails the job) instead of writing a file without the row.  (The 4-byte length bounds what a
  corrupt value can make ``unpack`` allocate to 4 GiB; a larger pickle is kept raw.)
* ``KV_BYTES`` (``Tuple[int, bytes]``): the output type hint of a step that keys packed values by
  shard, so Beam moves them with its varint and bytes coders.
* :class:`RowCodec`: a row (a dict) as ``(present, values, others)`` for a fixed tuple of column
  names that both ends know (the writer's schema): the names the row has (a bit mask), their
  values in the names' order, and a dict of any other keys (None when there are none).  Pickled
  dicts repeat every key name in every row; without them a packed realweb row is ~500 bytes
  (~11%) smaller.  ``decode(encode(row)) == row``, same keys, values and value types, but the
  keys come back in the names' order, then the others: only for rows whose key order nothing
  reads (the Parquet writers write by schema).
"""
from __future__ import annotations

import pickle
import typing
from typing import Any

import pyarrow as pa

RAW = 0
ZSTD = 1
LEVEL = 1
MIN_COMPRESS = 128
MAX_UNPACKED = (1 << 32) - 1      # the 4-byte length field's limit: a larger pickle is kept raw
PROTOCOL = 5
KV_BYTES = typing.Tuple[int, bytes]

_codec: pa.Codec | None = None


class PackedValueError(ValueError):
    """A bytes value that :func:`pack` did not make (a bug or a corrupted shuffle)."""


def _zstd() -> pa.Codec:
    global _codec
    if _codec is None:
        _codec = pa.Codec("zstd", compression_level=LEVEL)
    return _codec


def pack(value: Any) -> bytes:
    """``value`` as one bytes value (see the module docstring for the layout)."""
    data = pickle.dumps(value, protocol=PROTOCOL)
    if MIN_COMPRESS <= len(data) <= MAX_UNPACKED:
        small = _zstd().compress(data, asbytes=True)
        if len(small) + 4 < len(data):
            return bytes((ZSTD,)) + len(data).to_bytes(4, "little") + small
    return bytes((RAW,)) + data


def unpack(packed: bytes) -> Any:
    """The value :func:`pack` made ``packed`` from; :class:`PackedValueError` for anything else."""
    if not isinstance(packed, (bytes, bytearray, memoryview)):
        raise PackedValueError(f"packed value must be bytes, got {type(packed).__name__}")
    view = memoryview(packed)
    if len(view) < 1:
        raise PackedValueError("empty packed value")
    tag = view[0]
    try:
        if tag == RAW:
            return pickle.loads(view[1:])
        if tag == ZSTD:
            if len(view) < 5:
                raise PackedValueError(f"packed value of {len(view)} bytes has no length")
            size = int.from_bytes(view[1:5], "little")
            return pickle.loads(_zstd().decompress(view[5:], size, asbytes=True))
    except PackedValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means the bytes are not ours
        raise PackedValueError(f"packed value of {len(view)} bytes does not unpack: "
                               f"{type(exc).__name__}: {exc}"[:500]) from exc
    raise PackedValueError(f"packed value has unknown tag {tag}")


class RowCodec:
    """Rows <-> ``(present, values, others)`` for the column ``names`` (see the module docstring)."""

    def __init__(self, names):
        self.names = tuple(names)
        self.known = frozenset(self.names)
        if len(self.known) != len(self.names):
            raise ValueError("RowCodec names must be distinct")

    def encode(self, row: dict) -> tuple:
        present, values = 0, []
        for i, name in enumerate(self.names):
            if name in row:
                present |= 1 << i
                values.append(row[name])
        others = {k: v for k, v in row.items() if k not in self.known} if len(values) < len(row) else None
        return present, tuple(values), others or None

    def decode(self, value) -> dict:
        """The row :meth:`encode` made ``value`` from; :class:`PackedValueError` for anything else."""
        try:
            present, values, others = value
            if not isinstance(present, int) or not isinstance(values, tuple) or not (
                    others is None or (isinstance(others, dict) and others and self.known.isdisjoint(others))) or (
                    present < 0 or present.bit_count() != len(values) or present >> len(self.names)):
                raise ValueError("not an encoded row")
        except (TypeError, ValueError) as exc:
            raise PackedValueError(f"not a row this codec encoded: {type(value).__name__}") from exc
        it = iter(values)
        row = {name: next(it) for i, name in enumerate(self.names) if present >> i & 1}
        if others:
            row.update(others)
        return row

