"""Encoding documents of any length in bounded memory.

HF ``tokenizers`` holds 100-200 bytes per character of the text handed to one call (ids, offsets,
token strings, pre-token splits): one 20 MB document cost 2.5-3.7 GB.  So no call ever gets more
than ``max_chars`` characters: short documents are encoded together in groups of at most that
many characters, a longer one in pieces (``text_pieces``) whose ids are concatenated.

Where the pieces are cut: before a single space that sits between two non-space characters.
Every pre-tokenizer this project builds (the byte-level GPT-2 regex of ``train_bpe``, the gpt2 and
cl100k_base patterns of ``tokenizer_from_ranks``) starts a new pre-token at such a space and none
reaches across it, and BPE never merges across pre-tokens, so the concatenated ids equal the ids
of the whole text (the tests check both patterns).  The exceptions, all rare:

* a stretch of ``max_chars`` characters with no such space (a base64 blob, unspaced CJK) is cut
  at ``max_chars`` anyway: the ids still decode to exactly the text, but the tokens next to that
  cut can differ from whole-text encoding (a merge across the cut is not made);
* a tokenizer.json from elsewhere with a normalizer or a pre-tokenizer that looks across spaces,
  or an added (non-special) token containing a space, may tokenize differently at a cut.

Documents up to ``max_chars`` characters are encoded whole, exactly as before.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

# Longest text one tokenizer call gets (about 20 MB of tokenizer memory at ~180 bytes/char).
DEFAULT_MAX_CHARS = 100_000
_MAX_TRIES = 1000  # spaces looked at per cut before cutting hard


def _cut(text: str, start: int, end: int) -> int:
    """Where to end the piece that starts at ``start`` (``start < cut <= end < len(text)``)."""
    lo = start + max(1, (end - start) // 2)  # pieces stay at least half full
    hi = end
    for _ in range(_MAX_TRIES):
        i = text.rfind(" ", lo, hi)
        if i < 0:
            break
        if not text[i - 1].isspace() and not text[i + 1].isspace():
            return i
        hi = i
    return end


def text_pieces(text: str, max_chars: int) -> Iterator[str]:
    """``text`` as consecutive pieces of at most ``max_chars`` characters (one piece when short)."""
    if max_chars < 2:
        raise ValueError(f"max_chars must be at least 2, got {max_chars}")
    start, n = 0, len(text)
    while n - start > max_chars:
        cut = _cut(text, start, start + max_chars)
        yield text[start:cut]
        start = cut
    yield text[start:]


def _encode(tokenizer, texts: list[str], dtype) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=dtype)
            for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def encode_documents(tokenizer, texts: Sequence[str], *, eot: int, dtype,
                     max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[np.ndarray]:
    """The ids of each text followed by ``eot``, as ``dtype`` arrays, in input order.

    No tokenizer call sees more than ``max_chars`` characters (see the module docstring)."""
    dtype = np.dtype(dtype)
    tail = np.asarray([eot], dtype=dtype)
    group: list[str] = []
    size = 0

    def flush():
        nonlocal group, size
        out = _encode(tokenizer, group, dtype) if group else []
        group, size = [], 0
        return out

    for text in texts:
        if len(text) > max_chars:
            for ids in flush():
                yield np.concatenate([ids, tail])
            parts = [_encode(tokenizer, [piece], dtype)[0] for piece in text_pieces(text, max_chars)]
            yield np.concatenate(parts + [tail])
            continue
        if group and size + len(text) > max_chars:
            for ids in flush():
                yield np.concatenate([ids, tail])
        group.append(text)
        size += len(text)
    for ids in flush():
        yield np.concatenate([ids, tail])


def text_problem(text: object, max_chars: int) -> tuple[str, str] | None:
    """Why a document's ``text`` cannot be tokenized, as (dead-letter reason, detail), or None."""
    if not isinstance(text, str):
        return "null_text", ""
    if not text:
        return "empty_text", ""
    if len(text) > max_chars:
        return "document_too_large", (f"{len(text)} characters, over tokenize.max_document_chars "
                                      f"= {max_chars}")
    return None
