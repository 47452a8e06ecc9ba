"""Benchmark decontamination: find evaluation text inside documents by shared word n-grams.

Contract
--------
* ``normalize_words(text)`` is the ONE normalisation used on both sides (benchmark and document):
  words are maximal runs of letters, combining marks and digits (Unicode categories L*, M*, N*) of
  the original text; every other character (punctuation, symbols, whitespace, control) separates
  words.  Each word is then NFKC-normalised, case-folded and NFKC-normalised again (so ``ﬁ``,
  fullwidth ``Ａ`` and ``ß``/``SS`` compare equal); a character that NFKC turns into punctuation
  splits the word.  "Don't stop", "DON'T -- STOP!" and wikitext's ``don 't stop`` are all
  ``don t stop``; ``well @-@ known`` and ``well-known`` are both ``well known``.
* An n-gram is ``n`` consecutive normalised words (default 13, as GPT-3).  Its hash is a
  polynomial over 64-bit BLAKE2b hashes of its words, mod 2**64 (vectorised with numpy).  The
  chance that a document n-gram collides with one of B benchmark n-grams is about B / 2**64 per
  n-gram (1e-12 for 10M benchmark n-grams): no verification pass is made.
* ``BenchmarkIndex`` holds the hashes of every benchmark n-gram -> the benchmark(s) it came from,
  as sorted numpy arrays (12 bytes per n-gram; pickles small for a Beam side input).  N-grams never
  cross passage boundaries; passages shorter than ``n`` words contribute nothing (lower ``n`` for
  benchmarks of short items).
* Precision: n-grams made mostly of stop words (``max_stopword_frac``) are not indexed, and
  ``drop_common(texts, min_docs)`` removes n-grams found in at least ``min_docs`` documents of a
  reference web sample (boilerplate that benchmarks quote too).  ``find(text, min_matches)`` only
  reports a benchmark when at least ``min_matches`` distinct document n-gram positions match it.
* ``Match`` gives the benchmark name, the number of matched n-grams and the matched spans as
  character offsets into the ORIGINAL text (overlapping n-grams merged), so a reason can quote them.
* ``load_benchmark_texts`` reads JSONL (``.jsonl``/``.ndjson``/``.json``, optionally ``.gz``),
  Parquet or plain text into passages; file listing and opening are passed in (``match``,
  ``open_file``) so the pipelines can use Beam's FileSystems; the defaults use the local disk.
  Plain text: one passage per paragraph (lines separated by blank or whitespace-only lines), so
  hard-wrapped text keeps its n-grams across line breaks.  JSONL / Parquet: one passage per
  record, the ``fields`` joined by newlines (no ``fields``: every string value of the record).
  A malformed record, an unknown field or a benchmark without text raises ``BenchmarkError``.
"""
from __future__ import annotations

import glob as _glob
import gzip
import hashlib
import io
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Callable, Iterable, Iterator, Sequence

import numpy as np

DEFAULT_NGRAM = 13
SNIPPET_CHARS = 300
_MULT = np.uint64(0x9E3779B97F4A7C15)   # odd multiplier of the polynomial n-gram hash


class BenchmarkError(ValueError):
    """A benchmark file cannot be read or holds no usable text; the message names the file."""


# ---------------------------------------------------------------------------------------- words
@lru_cache(maxsize=1)
def _word_re() -> re.Pattern:
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        ok = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] in "LMN"
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            ranges.append((start, cp - 1))
            start = None
    cls = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{cls}]+")


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


def _norm_token(token: str) -> list[str]:
    if token.isascii():
        return [token.lower()]
    norm = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", token).casefold())
    return _word_re().findall(norm)


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """``(normalised word, start, end)`` with character offsets into ``text``."""
    pattern = _ASCII_WORD if text.isascii() else _word_re()
    out: list[tuple[str, int, int]] = []
    for m in pattern.finditer(text):
        start, end = m.span()
        for word in _norm_token(m.group()):
            out.append((word, start, end))
    return out


def normalize_words(text: str) -> list[str]:
    """The normalised words of ``text`` (see the module docstring; identical for both sides)."""
    return [w for w, _, _ in word_spans(text)]


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """uint64 hash of every n-gram of ``words`` (``len(words) - n + 1`` values, or none)."""
    count = len(words) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    cache: dict[str, int] = {}
    wh = np.fromiter((cache[w] if w in cache else cache.setdefault(w, _word_hash(w)) for w in words),
                     dtype=np.uint64, count=len(words))
    h = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _MULT + wh[k:k + count]
    return h


# ---------------------------------------------------------------------------------------- index
@dataclass(frozen=True)
class Match:
    """One benchmark found in one document."""

    benchmark: str
    ngrams: int                                  # distinct document n-gram positions matched
    spans: tuple[tuple[int, int], ...]           # merged matched regions, offsets into the text
    text: str = ""                               # the longest region, at most SNIPPET_CHARS

    @property
    def start(self) -> int:
        return self.spans[0][0] if self.spans else 0

    @property
    def end(self) -> int:
        return self.spans[0][1] if self.spans else 0

    def reason(self) -> str:
        return f"{self.ngrams} {'n-gram' if self.ngrams == 1 else 'n-grams'} of benchmark {self.benchmark}: " \
               f"{self.text!r}"


@dataclass
class BenchmarkIndex:
    """Hashed benchmark n-grams -> benchmark names.  ``add`` passages, then ``find`` in documents."""

    n: int = DEFAULT_NGRAM
    max_stopword_frac: float | None = None       # drop n-grams with a larger share of stop words
    stop_words: frozenset[str] = frozenset()
    names: list[str] = field(default_factory=list)
    passages: dict[str, int] = field(default_factory=dict)
    stopword_dropped: int = 0
    common_dropped: int = 0
    _pending: list[tuple[np.ndarray, int]] = field(default_factory=list, repr=False)
    _hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64), repr=False)
    _ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32), repr=False)

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"n-gram size must be at least 1, got {self.n}")
        self.n = int(self.n)
        self.stop_words = frozenset(normalize_words(" ".join(self.stop_words)))

    @classmethod
    def build(cls, items: Iterable[tuple[str, str]], n: int = DEFAULT_NGRAM, **kwargs) -> "BenchmarkIndex":
        index = cls(n=n, **kwargs)
        for name, text in items:
            index.add(name, text)
        index.freeze()
        return index

    def _keep_mask(self, words: Sequence[str], count: int) -> np.ndarray | None:
        if self.max_stopword_frac is None or not self.stop_words:
            return None
        stop = np.fromiter((w in self.stop_words for w in words), dtype=np.int32, count=len(words))
        window = np.convolve(stop, np.ones(self.n, dtype=np.int32), mode="valid")[:count]
        return window <= self.max_stopword_frac * self.n

    def add(self, name: str, text: str) -> int:
        """Index one passage of benchmark ``name``; returns the n-grams it added."""
        if name not in self.names:
            self.names.append(name)
        self.passages[name] = self.passages.get(name, 0) + 1
        words = normalize_words(text)
        hashes = ngram_hashes(words, self.n)
        keep = self._keep_mask(words, len(hashes))
        if keep is not None:
            self.stopword_dropped += int((~keep).sum())
            hashes = hashes[keep]
        if len(hashes):
            self._pending.append((hashes, self.names.index(name)))
        return len(hashes)

    def freeze(self) -> "BenchmarkIndex":
        if self._pending:
            hashes = np.concatenate([self._hashes] + [h for h, _ in self._pending])
            ids = np.concatenate([self._ids] + [np.full(len(h), i, dtype=np.int32) for h, i in self._pending])
            pairs = np.unique(np.stack([hashes, ids.astype(np.uint64)]), axis=1)   # sorted by hash, then id
            self._hashes, self._ids = pairs[0].copy(), pairs[1].astype(np.int32)
            self._pending = []
        return self

    def __len__(self) -> int:
        self.freeze()
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        self.freeze()
        return int(self._hashes.nbytes + self._ids.nbytes)

    def ngrams_per_benchmark(self) -> dict[str, int]:
        self.freeze()
        counts = np.bincount(self._ids, minlength=len(self.names))
        return {name: int(counts[i]) for i, name in enumerate(self.names)}

    def hashes(self) -> Iterator[tuple[int, str]]:
        """Every ``(n-gram hash, benchmark name)`` (for a sharded join on hashes)."""
        self.freeze()
        for h, i in zip(self._hashes.tolist(), self._ids.tolist()):
            yield h, self.names[i]

    def _lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, benchmark ids) of every hit of ``hashes`` (a position repeats per benchmark)."""
        self.freeze()
        if not len(hashes) or not len(self._hashes):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        left = np.searchsorted(self._hashes, hashes, side="left")
        right = np.searchsorted(self._hashes, hashes, side="right")
        hit = np.nonzero(right > left)[0]
        pos, ids = [], []
        for p in hit.tolist():
            for j in range(left[p], right[p]):
                pos.append(p)
                ids.append(self._ids[j])
        return np.asarray(pos, dtype=np.int64), np.asarray(ids, dtype=np.int32)

    def matched_hashes(self, text: str) -> set[int]:
        """The distinct indexed n-gram hashes that occur in ``text``."""
        hashes = ngram_hashes(normalize_words(text), self.n)
        pos, _ = self._lookup(hashes)
        return set(hashes[pos].tolist())

    def drop_common(self, texts: Iterable[str], min_docs: int) -> int:
        """Remove n-grams found in at least ``min_docs`` of ``texts`` (a reference web sample)."""
        self.freeze()
        docs_per_hash: dict[int, int] = {}
        for text in texts:
            for h in self.matched_hashes(text):
                docs_per_hash[h] = docs_per_hash.get(h, 0) + 1
        common = np.array(sorted(h for h, c in docs_per_hash.items() if c >= min_docs), dtype=np.uint64)
        if len(common):
            keep = ~np.isin(self._hashes, common)
            self.common_dropped += int((~keep).sum())
            self._hashes, self._ids = self._hashes[keep], self._ids[keep]
        return int(len(common))

    def find(self, text: str, min_matches: int = 1) -> list[Match]:
        """Benchmarks sharing at least ``min_matches`` n-grams with ``text``, by name."""
        spans = word_spans(text)
        hashes = ngram_hashes([w for w, _, _ in spans], self.n)
        pos, ids = self._lookup(hashes)
        out = []
        for bid in sorted(set(ids.tolist()), key=lambda i: self.names[i]):
            hit = np.unique(pos[ids == bid]).tolist()
            if len(hit) < max(1, int(min_matches)):
                continue
            regions: list[list[int]] = []
            for p in hit:
                start, end = spans[p][1], spans[p + self.n - 1][2]
                if regions and start <= regions[-1][1]:
                    regions[-1][1] = max(regions[-1][1], end)
                else:
                    regions.append([start, end])
            longest = max(regions, key=lambda r: (r[1] - r[0], -r[0]))
            out.append(Match(self.names[bid], len(hit), tuple((a, b) for a, b in regions),
                             text[longest[0]:longest[1]][:SNIPPET_CHARS]))
        return out


# ---------------------------------------------------------------------------------------- loading
FORMATS = ("auto", "jsonl", "parquet", "text")


def detect_format(path: str) -> str:
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def paragraphs(text: str) -> list[str]:
    """Plain text -> passages: runs of lines separated by blank or whitespace-only lines."""
    return [p.strip() for p in re.split(r"\n[ \t\r\f\v]*\n", text.replace("\r\n", "\n")) if p.strip()]


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _record_passage(record: dict, fields: Sequence[str] | None, seen: set[str]) -> str:
    if fields is None:
        return "\n".join(_strings(record))
    parts = []
    for f in fields:
        if f in record and record[f] is not None:
            seen.add(f)
            parts.extend(_strings(record[f]))
    return "\n".join(parts)


def _local_open(path: str) -> IO[bytes]:
    return open(path, "rb")


def _local_match(pattern: str) -> list[str]:
    return sorted(_glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]


def load_benchmark_texts(path_or_glob: str, format: str = "auto", fields: Sequence[str] | None = None, *,
                         open_file: Callable[[str], IO[bytes]] = _local_open,
                         match: Callable[[str], list[str]] = _local_match) -> list[str]:
    """Passages of every file matching ``path_or_glob`` (see the module docstring)."""
    if format not in FORMATS:
        raise BenchmarkError(f"benchmark format {format!r}: use one of {', '.join(FORMATS)}")
    fields = list(fields) if fields else None
    paths = match(path_or_glob)
    if not paths:
        raise BenchmarkError(f"benchmark {path_or_glob}: no files match")
    passages: list[str] = []
    seen: set[str] = set()
    for path in paths:
        kind = detect_format(path) if format == "auto" else format
        try:
            with open_file(path) as fh:
                data = fh.read()
        except (OSError, IOError) as exc:
            raise BenchmarkError(f"benchmark file {path}: cannot read ({exc})") from None
        except Exception as exc:  # FileSystems raise their own types for missing objects
            raise BenchmarkError(f"benchmark file {path}: cannot read ({type(exc).__name__}: {exc})") from None
        if path.lower().endswith(".gz") or data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise BenchmarkError(f"benchmark file {path}: bad gzip data ({exc})") from None
        if kind == "parquet":
            passages += _parquet_passages(path, data, fields, seen)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BenchmarkError(f"benchmark file {path}: not UTF-8 text ({exc})") from None
        if kind == "text":
            passages += paragraphs(text)
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkError(f"benchmark file {path} line {lineno}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                record = {"": record}
            passage = _record_passage(record, fields, seen)
            if passage.strip():
                passages.append(passage)
    if fields is not None:
        missing = [f for f in fields if f not in seen]
        if missing:
            raise BenchmarkError(f"benchmark {path_or_glob}: field(s) {', '.join(missing)} found in no record")
    if not passages:
        raise BenchmarkError(f"benchmark {path_or_glob}: no text found")
    return passages


def _parquet_passages(path: str, data: bytes, fields: Sequence[str] | None, seen: set[str]) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(io.BytesIO(data))
        names = pfile.schema_arrow.names
        columns = [f for f in fields if f in names] if fields is not None else None
        out = []
        for batch in pfile.iter_batches(batch_size=4096, columns=columns):
            for record in batch.to_pylist():
                passage = _record_passage(record, fields, seen)
                if passage.strip():
                    out.append(passage)
        return out
    except (pa.ArrowException, OSError) as exc:
        raise BenchmarkError(f"benchmark file {path}: not readable Parquet ({exc})") from None
