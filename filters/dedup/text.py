"""Text normalisation, stable hashes and word n-gram shingles for deduplication.

Two documents should count as "the same line" or "the same text" when they differ only in case,
numbers, punctuation, whitespace or Unicode compatibility forms (full-width letters, ligatures).
Normalisation therefore applies, in order: NFKC, lower-casing, every run of decimal digits (any
script) -> "0", every character that is not a letter, mark or number (punctuation, symbols,
controls) -> a space, whitespace collapsed to single spaces.  It works on UTF-8 bytes: ASCII via
``bytes.translate``, the few non-ASCII characters via a code-point class table, so a 1,000-word
document normalises in about 0.1 ms (``regex`` substitutions took 2-3x longer).

Because the normalised text is words joined by single spaces, a word n-gram is exactly a
substring of it; ``shingle_hashes`` hashes every n-gram of a document with a few NumPy passes (a
polynomial substring hash from prefix sums, then the MurmurHash3 finaliser) instead of one
Python hash call per shingle, which is what makes MinHash signatures cheap enough for a full
snapshot.

The class mapping of the last texts seen is memoised per process until its first reuse (bounded;
keyed by the text object): MinHash and line dedup normalise the same text in one worker, and the
second pass reuses the first one's NFKC and class mapping.

All hashes are stable across processes, machines and Python versions (no ``hash()``): blake2b for
line hashes, fixed 64-bit constants for shingles.
"""
from __future__ import annotations

import hashlib
import sys
import threading
import unicodedata
from collections import OrderedDict
from functools import lru_cache

import numpy as np

_MASK64 = (1 << 64) - 1
# Base of the polynomial substring hash: any odd 64-bit constant is invertible mod 2^64.
_POLY_BASE = 0x9E3779B97F4A7C15
_POLY_BASE_INV = pow(_POLY_BASE, -1, 1 << 64)
_U64 = np.uint64

# Character classes after NFKC + lower-casing: letters, marks and non-decimal numbers are kept;
# decimal digits (Unicode Nd) collapse per run to "0"; everything else (punctuation, symbols,
# spaces, controls, unassigned) separates words; "\n" is kept so lines can be cut back out.
KEEP, SEPARATOR, DIGIT, NEWLINE = 0, 1, 2, 3
_SPACE, _ZERO, _LF = 0x20, 0x30, 0x0A


def char_class(ch: str) -> int:
    """The class of one character (the definition both fast paths below are built from)."""
    if ch == "\n":
        return NEWLINE
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return DIGIT
    if cat[0] in "LMN":
        return KEEP
    return SEPARATOR


_UNKNOWN = 0xFF


@lru_cache(maxsize=1)
def _codepoint_table() -> np.ndarray:
    """Per-process cache of code point classes (1.1 MB), filled lazily: ``_UNKNOWN`` until a
    code point is first met.  Building all 1.1 M entries up front cost ~0.6 CPU-s per worker
    process, while a snapshot's texts use a few thousand distinct code points."""
    return np.full(0x110000, _UNKNOWN, dtype=np.uint8)


def _codepoint_classes(cp: np.ndarray) -> np.ndarray:
    """``char_class`` of each code point in ``cp`` (uint32, <= 0x10FFFF); surrogates (which never
    occur in encoded text) count as separators."""
    table = _codepoint_table()
    cls = table[cp]
    unknown = cls == _UNKNOWN
    if unknown.any():
        for c in np.unique(cp[unknown]).tolist():
            table[c] = SEPARATOR if 0xD800 <= c <= 0xDFFF else char_class(chr(c))
        cls = table[cp]
    return cls


def _ascii_table() -> bytes:
    out = bytearray(256)
    for b in range(256):
        cls = char_class(chr(b)) if b < 128 else KEEP
        out[b] = {KEEP: b, SEPARATOR: _SPACE, DIGIT: _ZERO, NEWLINE: _LF}[cls]
    return bytes(out)


_ASCII_TRANSLATE = _ascii_table()


# The texts whose class mapping was computed last and not reused yet (id -> (text, read-only
# array, bytes held)): MinHash (``normalized_bytes``) and line dedup (``normalize_lines``)
# normalise the same text object in one worker, a batch of MinHash texts apart, so the second call
# takes the first one's work (and drops the entry).  Bounded by ``_MEMO_ENTRIES`` texts and
# ``_MEMO_BYTES`` bytes (arrays and the texts they keep alive; the oldest go first); an entry holds
# its text, so an id in it is never that of another object.
_MEMO_ENTRIES = 4096
_MEMO_BYTES = 32 << 20
_memo: OrderedDict[int, tuple[str, np.ndarray, int]] = OrderedDict()
_memo_size = [0]
_memo_lock = threading.Lock()


def _class_mapped(text: str) -> np.ndarray:
    """``_class_map(text)``, read-only; taken from the memo when the same text object was mapped
    last and not reused since, else computed and remembered."""
    key = id(text)
    with _memo_lock:
        hit = _memo.get(key)
        if hit is not None and hit[0] is text:
            del _memo[key]
            _memo_size[0] -= hit[2]
            return hit[1]
    arr = _class_map(text)
    arr.flags.writeable = False
    size = arr.nbytes + sys.getsizeof(text)
    if size > _MEMO_BYTES:
        return arr
    with _memo_lock:
        old = _memo.pop(key, None)
        if old is not None:
            _memo_size[0] -= old[2]
        _memo[key] = (text, arr, size)
        _memo_size[0] += size
        while len(_memo) > _MEMO_ENTRIES or _memo_size[0] > _MEMO_BYTES:
            _memo_size[0] -= _memo.popitem(last=False)[1][2]
    return arr


def _class_map(text: str) -> np.ndarray:
    """NFKC + lower case + class mapping, as UTF-8 bytes (uint8 array).

    Separators become " ", "\n" stays, every digit byte becomes "0" (so afterwards a run of "0"
    is exactly a run of digits).  ASCII goes through ``bytes.translate``; only non-ASCII
    characters (few, in most text) are decoded to code points, looked up in the (lazily filled) class table and
    overwritten in place.
    """
    data = unicodedata.normalize("NFKC", text).lower().encode("utf-8", errors="replace")
    out = data.translate(_ASCII_TRANSLATE)
    if data.isascii():
        return np.frombuffer(out, dtype=np.uint8)
    d = np.frombuffer(data, dtype=np.uint8)
    arr = np.frombuffer(bytearray(out), dtype=np.uint8)
    leads = np.flatnonzero(d >= 0xC0)
    b0 = d[leads].astype(np.uint32)
    n = d.size
    nxt = lambda k: d[np.minimum(leads + k, n - 1)].astype(np.uint32) & 0x3F  # noqa: E731
    b1, b2, b3 = nxt(1), nxt(2), nxt(3)
    cp = np.where(b0 < 0xE0, ((b0 & 0x1F) << 6) | b1,
         np.where(b0 < 0xF0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                  ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    cls = _codepoint_classes(np.minimum(cp, 0x10FFFF))
    change = cls != KEEP
    if change.any():
        starts = leads[change]
        widths = 2 + (b0[change] >= 0xE0) + (b0[change] >= 0xF0)
        fill = np.where(cls[change] == DIGIT, _ZERO, _SPACE).astype(np.uint8)
        total = int(widths.sum())
        first = np.repeat(np.cumsum(widths) - widths, widths)
        index = np.repeat(starts, widths) + (np.arange(total) - first)
        arr[index] = np.repeat(fill, widths)
    return arr


def _drop_repeats(arr: np.ndarray, *masks: np.ndarray) -> np.ndarray:
    """Remove every byte for which one of ``masks`` holds at it and at the byte before it."""
    repeat = masks[0][1:] & masks[0][:-1]
    for mask in masks[1:]:
        repeat |= mask[1:] & mask[:-1]
    if not repeat.any():
        return arr
    keep = np.ones(arr.size, dtype=bool)
    keep[1:] = ~repeat
    return arr[keep]


def normalized_bytes(text: str) -> np.ndarray:
    """``normalize_text(text).encode()`` as a uint8 array, without the str round trips."""
    arr = _class_mapped(text)
    if arr.size == 0:
        return arr
    if (arr == _LF).any():
        arr = np.where(arr == _LF, np.uint8(_SPACE), arr)
    space = arr == _SPACE
    zero = arr == _ZERO
    arr = _drop_repeats(arr, space, zero)
    if arr.size and arr[0] == _SPACE:
        arr = arr[1:]
    if arr.size and arr[-1] == _SPACE:
        arr = arr[:-1]
    return arr


def _normalized_raw(text: str) -> str:
    """Class-mapped text with digit runs collapsed; whitespace not collapsed, "\n" kept."""
    arr = _class_mapped(text)
    return _drop_repeats(arr, arr == _ZERO).tobytes().decode("utf-8")


def normalize_text(text: str) -> str:
    """Canonical form of a text for duplicate detection: NFKC, lower case, each run of digits ->
    "0", punctuation/symbols/controls -> space, words joined by single spaces (may be "")."""
    return normalized_bytes(text).tobytes().decode("utf-8")


def normalize_line(line: str) -> str:
    """``normalize_text`` of one line."""
    return normalize_text(line)


def normalize_lines(text: str) -> list[str]:
    """``normalize_line`` of every line of ``text.split("\n")``, computed in one pass."""
    raw = _normalized_raw(text).split("\n")
    lines = text.split("\n")
    if len(raw) != len(lines):  # pragma: no cover - NFKC never creates or removes "\n"
        return [normalize_line(line) for line in lines]
    return [" ".join(r.split()) for r in raw]


def stable_hash64(data: str | bytes, *, salt: bytes = b"") -> int:
    """A stable unsigned 64-bit hash (blake2b), the same on every machine and run."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt[:16]).digest(), "big")


def line_hash(normalized_line: str) -> int:
    """64-bit hash of an already normalised line (64 bits: no collisions at billions of lines)."""
    return stable_hash64(normalized_line, salt=b"dedup-line")


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser on a uint64 array: a bijection that spreads every input bit."""
    h = values.astype(_U64, copy=True)
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _powers(base: int, count: int) -> np.ndarray:
    """[base^0, base^1, ..., base^(count-1)] mod 2^64 (uint64 arithmetic wraps)."""
    out = np.full(count, base, dtype=_U64)
    out[0] = 1
    np.cumprod(out, out=out)
    return out


def shingle_hashes(normalized: str | np.ndarray, n: int = 5) -> np.ndarray:
    """Stable 64-bit hashes of the word ``n``-grams of an already normalised text (a str, or the
    uint8 array of ``normalized_bytes``).

    A text with fewer than ``n`` words is one shingle (the whole text); an empty text has none.
    The hash of a shingle depends only on its bytes, not on where it occurs, so the same n-gram in
    two documents hashes the same.  Duplicate shingles are not removed (MinHash ignores them).
    """
    if n < 1:
        raise ValueError(f"shingle size must be >= 1, got {n}")
    if isinstance(normalized, str):
        data = np.frombuffer(normalized.encode("utf-8"), dtype=np.uint8)
    else:
        data = normalized
    if data.size == 0:
        return np.empty(0, dtype=_U64)
    length = data.size
    spaces = np.flatnonzero(data == 32)
    starts = np.empty(spaces.size + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = spaces + 1
    ends = np.empty(spaces.size + 1, dtype=np.int64)
    ends[:-1] = spaces
    ends[-1] = length
    words = starts.size
    if words < n:
        s, e = starts[:1], ends[-1:]
    else:
        s, e = starts[: words - n + 1], ends[n - 1:]
    # Polynomial hash of bytes[s:e] = sum_j b_j * B^(e-1-j) = B^(e-1) * (C[e] - C[s]) with
    # C the prefix sums of b_j * B^-j; all mod 2^64.  Bytes get +1 so a NUL still counts.
    weighted = (data.astype(_U64) + _U64(1)) * _powers(_POLY_BASE_INV, length)
    prefix = np.zeros(length + 1, dtype=_U64)
    np.cumsum(weighted, out=prefix[1:])
    poly = (prefix[e] - prefix[s]) * _powers(_POLY_BASE, length)[e - 1]
    # Length goes in too, then the finaliser decorrelates the low bits MinHash uses.
    return fmix64(poly ^ (e - s).astype(_U64) * _U64(0xA24BAED4963EE407))


def shingle_hash_reference(shingle: str) -> int:
    """The value ``shingle_hashes`` gives a single shingle, in plain Python (for tests/debugging)."""
    data = shingle.encode("utf-8")
    poly = 0
    for byte in data:
        poly = (poly * _POLY_BASE + byte + 1) & _MASK64
    mixed = poly ^ ((len(data) * 0xA24BAED4963EE407) & _MASK64)
    return int(fmix64(np.array([mixed], dtype=_U64))[0])


def word_shingles(normalized: str, n: int = 5) -> list[str]:
    """The shingles themselves (for tests, exact-Jaccard checks and benchmarks)."""
    words = normalized.split(" ") if normalized else []
    if not words:
        return []
    if len(words) < n:
        return [normalized]
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def shingle_set(normalized: str, n: int = 5) -> np.ndarray:
    """Sorted unique shingle hashes: the set whose Jaccard similarity MinHash estimates."""
    return np.unique(shingle_hashes(normalized, n))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash arrays (1.0 for two empty sets)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)
