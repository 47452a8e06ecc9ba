"""Megatron-LM indexed dataset: a ``.bin`` token stream plus an ``.idx`` index, one pair per shard.

Layout of ``.idx`` (all little-endian; see docs/shard-format.md):

    9 bytes   magic  b"MMIDIDX\\x00\\x00"
    u64       version, always 1
    u8        dtype code of the tokens in .bin (Megatron's codes: 8 = uint16, 4 = int32, ...)
    u64       sequence count S
    u64       document-index length D (= documents + 1)
    int32[S]  sequence lengths, in tokens
    int64[S]  sequence pointers, byte offsets into .bin
    int64[D]  document index: sequence index where each document starts, then S

We write one sequence per document (the document's tokens followed by ``<|endoftext|>``), so the
document index is ``0..S``; the reader also accepts Megatron files with several sequences per
document.  Nothing here imports Beam: writing goes through a tiny filesystem interface that the
pipeline fills with Beam's FileSystems and that defaults to the local disk.
"""
from __future__ import annotations

import hashlib
import os
import struct
import uuid
from typing import IO, Iterable, Protocol, Sequence

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
_HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequence count, doc-index length
HEADER_SIZE = _HEADER.size  # 34 bytes

# Megatron-LM's DType enum; the codes are part of the file format.
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.float32),
    8: np.dtype(np.uint16),
}
CODE_FOR_DTYPE = {dt: code for code, dt in DTYPE_CODES.items()}

# Megatron's DType.optimal_dtype: uint16 below this cardinality, else int32.  (Megatron has no
# uint32 code, so int32 is what its readers understand; token ids never reach 2**31.)
UINT16_VOCAB_LIMIT = 65500


class IndexedDatasetError(ValueError):
    """A shard is truncated, corrupt or does not match its index; the message names the file."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size < UINT16_VOCAB_LIMIT else np.dtype(np.int32)


# --- writing ----------------------------------------------------------------------------------

class FileSystem(Protocol):
    def create(self, path: str) -> IO[bytes]: ...
    def rename(self, src: str, dst: str) -> None: ...
    def delete(self, path: str) -> None: ...


class LocalFileSystem:
    def create(self, path: str) -> IO[bytes]:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "wb")

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def delete(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _tmp_name(path: str) -> str:
    # Same directory as the target so the rename never crosses filesystems; hidden so that
    # globs for shards never pick up a half-written file.
    head, _, tail = path.rpartition("/")
    prefix = head + "/" if head else ""
    return f"{prefix}.{tail}.tmp-{uuid.uuid4().hex[:12]}"


def index_bytes(lengths: np.ndarray, dtype: np.dtype) -> bytes:
    """The complete ``.idx`` content for one sequence per document with ``lengths`` tokens each."""
    dtype = np.dtype(dtype)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > np.iinfo(np.int32).max):
        raise ValueError("sequence lengths must fit in int32")
    n = int(lengths.size)
    pointers = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    doc_idx = np.arange(n + 1, dtype=np.int64)
    header = _HEADER.pack(MAGIC, VERSION, CODE_FOR_DTYPE[dtype], n, n + 1)
    return b"".join([header, lengths.astype("<i4").tobytes(), pointers.astype("<i8").tobytes(),
                     doc_idx.astype("<i8").tobytes()])


class IndexedWriter:
    """Streams documents into an open ``.bin`` handle; ``index()`` then gives the ``.idx`` bytes.

    Only the per-document lengths are kept in memory, so a shard of any size streams through.
    """

    def __init__(self, bin_fh: IO[bytes], vocab_size: int):
        self.dtype = dtype_for_vocab(vocab_size)
        self.vocab_size = vocab_size
        self._fh = bin_fh
        self._lengths: list[int] = []
        self._sha = hashlib.sha256()
        self.tokens = 0
        self.max_token_id: int | None = None  # largest id written (None while empty)

    def add(self, tokens: Sequence[int] | np.ndarray | bytes) -> None:
        if isinstance(tokens, (bytes, bytearray, memoryview)):
            data = bytes(tokens)
            if len(data) % self.dtype.itemsize:
                raise ValueError("token bytes are not a whole number of tokens")
            n = len(data) // self.dtype.itemsize
            arr = np.frombuffer(data, dtype=self.dtype.newbyteorder("<"))
        else:
            arr = np.asarray(tokens)
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= self.vocab_size):
                raise ValueError(f"token id out of range for vocab_size {self.vocab_size}")
            data = arr.astype(self.dtype.newbyteorder("<"), copy=False).tobytes()
            n = int(arr.size)
        if n:
            top = int(arr.max())
            self.max_token_id = top if self.max_token_id is None else max(self.max_token_id, top)
        self._fh.write(data)
        self._sha.update(data)
        self._lengths.append(n)
        self.tokens += n

    @property
    def documents(self) -> int:
        return len(self._lengths)

    @property
    def sha256_bin(self) -> str:
        return self._sha.hexdigest()

    def index(self) -> bytes:
        return index_bytes(np.asarray(self._lengths, dtype=np.int64), self.dtype)


def write_indexed(path_prefix: str, docs: Iterable[Sequence[int] | np.ndarray | bytes], vocab_size: int,
                  fs: FileSystem | None = None) -> dict:
    """Write ``path_prefix``.bin/.idx atomically (temporary names, then renames).

    ``docs`` are complete token sequences (the caller appends ``<|endoftext|>``); raw ``bytes`` are
    taken as already encoded in the shard dtype.  The ``.bin`` is renamed into place before the
    ``.idx``, so an index under its final name always has its complete data file beside it.
    Returns ``{tokens, documents, sha256_bin, sha256_idx, max_token_id, dtype}``.
    """
    fs = fs or LocalFileSystem()
    bin_path, idx_path = path_prefix + ".bin", path_prefix + ".idx"
    bin_tmp, idx_tmp = _tmp_name(bin_path), _tmp_name(idx_path)
    try:
        with fs.create(bin_tmp) as fh:
            writer = IndexedWriter(fh, vocab_size)
            for doc in docs:
                writer.add(doc)
        idx = writer.index()
        with fs.create(idx_tmp) as fh:
            fh.write(idx)
        fs.rename(bin_tmp, bin_path)
        fs.rename(idx_tmp, idx_path)
    except BaseException:
        for tmp in (bin_tmp, idx_tmp):
            try:
                fs.delete(tmp)
            except Exception:  # noqa: BLE001 - cleanup must not hide the real error
                pass
        raise
    return {"tokens": writer.tokens, "documents": writer.documents, "sha256_bin": writer.sha256_bin,
            "sha256_idx": hashlib.sha256(idx).hexdigest(), "max_token_id": writer.max_token_id,
            "dtype": writer.dtype.name}


# --- reading ----------------------------------------------------------------------------------

def _memmap(path: str, dtype: np.dtype, offset: int = 0, count: int | None = None) -> np.ndarray:
    size = os.path.getsize(path)
    if count is None:
        count = (size - offset) // dtype.itemsize
    if count == 0:  # numpy cannot map an empty range
        return np.empty(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(count,))


class IndexedDataset:
    """Memory-mapped reader of one ``.bin``/``.idx`` pair; ``ds[i]`` is document ``i``'s tokens."""

    def __init__(self, path_prefix: str | os.PathLike):
        self.path_prefix = str(path_prefix)
        self.idx_path = self.path_prefix + ".idx"
        self.bin_path = self.path_prefix + ".bin"
        for path in (self.idx_path, self.bin_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"shard file missing: {path}")
        self._read_index()
        self._open_bin()

    def _fail(self, what: str) -> IndexedDatasetError:
        return IndexedDatasetError(f"{self.idx_path}: {what}")

    def _read_index(self) -> None:
        size = os.path.getsize(self.idx_path)
        with open(self.idx_path, "rb") as fh:
            head = fh.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            raise self._fail(f"truncated index: {size} bytes, header alone needs {HEADER_SIZE}")
        magic, version, code, n_seq, n_doc_idx = _HEADER.unpack(head)
        if magic != MAGIC:
            raise self._fail(f"not a Megatron indexed dataset (magic {magic!r}, expected {MAGIC!r})")
        if version != VERSION:
            raise self._fail(f"unsupported index version {version} (expected {VERSION})")
        if code not in DTYPE_CODES:
            raise self._fail(f"unknown dtype code {code}")
        self.dtype = DTYPE_CODES[code]
        expected = HEADER_SIZE + n_seq * 4 + n_seq * 8 + n_doc_idx * 8
        # Megatron's multimodal variant appends one int8 mode per sequence.
        if size not in (expected, expected + n_seq):
            raise self._fail(f"truncated or corrupt index: {size} bytes, header says {expected}")
        if n_doc_idx < 1:
            raise self._fail("document index is empty")
        off = HEADER_SIZE
        self.sizes = _memmap(self.idx_path, np.dtype("<i4"), off, n_seq)
        off += n_seq * 4
        self.pointers = _memmap(self.idx_path, np.dtype("<i8"), off, n_seq)
        off += n_seq * 8
        self.doc_idx = _memmap(self.idx_path, np.dtype("<i8"), off, n_doc_idx)
        if self.doc_idx[0] != 0 or self.doc_idx[-1] != n_seq or np.any(np.diff(self.doc_idx) < 0):
            raise self._fail("document index is not a non-decreasing range from 0 to the sequence count")
        if n_seq and self.sizes.min() < 0:
            raise self._fail("negative sequence length")
        expected_ptr = np.zeros(n_seq, dtype=np.int64)
        if n_seq > 1:
            np.cumsum(self.sizes[:-1].astype(np.int64) * self.dtype.itemsize, out=expected_ptr[1:])
        if not np.array_equal(expected_ptr, self.pointers):
            raise self._fail("sequence pointers do not match the sequence lengths")
        self.total_tokens = int(self.sizes.sum(dtype=np.int64))

    def _open_bin(self) -> None:
        size = os.path.getsize(self.bin_path)
        want = self.total_tokens * self.dtype.itemsize
        if size != want:
            kind = "truncated" if size < want else "longer than its index"
            raise IndexedDatasetError(f"{self.bin_path}: {kind}: {size} bytes, index expects {want}")
        self.tokens = _memmap(self.bin_path, self.dtype.newbyteorder("<"))

    def __getstate__(self) -> dict:
        # Pickling (e.g. into DataLoader worker processes) re-opens the files instead of copying
        # the memory-mapped arrays.
        return {"path_prefix": self.path_prefix}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path_prefix"])

    def __len__(self) -> int:
        return len(self.doc_idx) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"document {i} out of range ({n} documents in {self.path_prefix})")
        first, stop = int(self.doc_idx[i]), int(self.doc_idx[i + 1])
        if first == stop:
            return self.tokens[:0]
        start = int(self.pointers[first]) // self.dtype.itemsize
        end = int(self.pointers[stop - 1]) // self.dtype.itemsize + int(self.sizes[stop - 1])
        return self.tokens[start:end]

    def token_range(self, chunk: int = 1 << 24) -> tuple[int, int] | None:
        """(smallest, largest) token id in the shard, read ``chunk`` tokens at a time; None if empty."""
        lo = hi = None
        for start in range(0, len(self.tokens), chunk):
            part = self.tokens[start:start + chunk]
            a, b = int(part.min()), int(part.max())
            lo, hi = (a, b) if lo is None else (min(lo, a), max(hi, b))
        return None if lo is None else (lo, hi)

    def document_lengths(self) -> np.ndarray:
        """Tokens per document (a document may span several Megatron sequences)."""
        cums = np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)])
        return cums[self.doc_idx[1:]] - cums[self.doc_idx[:-1]]

    def __repr__(self) -> str:
        return f"IndexedDataset({self.path_prefix!r}, documents={len(self)}, tokens={self.total_tokens})"
