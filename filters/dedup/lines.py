"""Line-level dedup on one document: its line keys, and cutting repeated lines back out.

A line takes part when its normalised form (``filters.dedup.text.normalize_lines``) has at least
``min_line_chars`` characters; its key is the 8-byte big-endian blake2b line hash.
"""
from __future__ import annotations

from typing import Collection

from filters.dedup.text import line_hash, normalize_lines

KEY_BYTES = 8


def line_key(normalized: str) -> bytes:
    return line_hash(normalized).to_bytes(KEY_BYTES, "big")


def line_keys(text: str, min_line_chars: int) -> list[bytes]:
    """The distinct keys of ``text``'s lines, in order of first occurrence."""
    seen: dict[bytes, None] = {}  # bounded by one document's lines
    for norm in normalize_lines(text):
        if len(norm) >= min_line_chars:
            seen.setdefault(line_key(norm), None)
    return list(seen)


def pack_keys(keys: Collection[bytes]) -> bytes:
    """Keys as one bytes value (8 bytes each): cheap to carry through a shuffle."""
    return b"".join(keys)


def unpack_keys(packed: bytes) -> list[bytes]:
    return [packed[i:i + KEY_BYTES] for i in range(0, len(packed), KEY_BYTES)]


def cut_lines(text: str, drop: Collection[bytes], min_line_chars: int) -> tuple[str, int]:
    """``text`` without the lines whose key is in ``drop``, and how many lines went."""
    lines = text.split("\n")
    kept = [line for line, norm in zip(lines, normalize_lines(text))
            if not (len(norm) >= min_line_chars and line_key(norm) in drop)]
    return "\n".join(kept), len(lines) - len(kept)


def too_short(text: str, min_doc_chars: int) -> bool:
    return len(text.strip()) < min_doc_chars
