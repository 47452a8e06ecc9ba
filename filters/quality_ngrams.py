"""Gopher's n-gram repetition measures over a document's words, all n at once, in NumPy.

Words get integer ids; the ids of n-grams are built from those of (n-1)-grams and the next word
and renumbered with ``np.unique``, so every n-gram is identified exactly (no hashing) and each n
costs a sort of the starts whose (n-1)-gram repeats instead of a Python loop over all tuples.  The values are
the ones the plain definitions give (``filters.quality``): same integer character counts divided
by the same total, same tie-breaking (the most frequent n-gram seen first).
"""
from __future__ import annotations

from itertools import count
from typing import Iterable, Sequence

import numpy as np


def ngram_fracs(words: Sequence[str], total_chars: int, top: Iterable[int],
                dup: Iterable[int]) -> tuple[dict[int, float], dict[int, float]]:
    """``({n: top n-gram char fraction}, {n: duplicated n-gram char fraction})``.

    top: characters of the most frequent n-gram (first seen among equals) times its count, over
    ``total_chars``, capped at 1 (0 when no n-gram repeats).  dup: characters of the words covered
    by a repeat (not the first occurrence) of any n-gram, over ``total_chars``.  ``words`` are
    counted with ``len``; ``total_chars`` is the caller's (it may count other spellings).
    """
    top, dup = tuple(top), tuple(dup)
    n_words = len(words)
    top_out = {n: 0.0 for n in top}
    dup_out = {n: 0.0 for n in dup}
    wanted = [n for n in top if n_words >= n] + [n for n in dup if n_words >= 2 * n]
    if not wanted or not total_chars:
        return top_out, dup_out
    # Word ids: the position of each word's first occurrence (one dict pass; ids below n_words).
    index: dict[str, int] = {}
    word_ids = np.fromiter(map(index.setdefault, words, count()), dtype=np.int64, count=n_words)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=n_words)
    starts = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    # pos: start positions whose n-gram may repeat; ids: their n-gram ids; counts: per id.  Two
    # equal n-grams have equal (n-1)-gram prefixes, so only starts whose (n-1)-gram repeats can
    # hold a repeated n-gram: the others are dropped, and the arrays shrink as n grows.
    pos, ids, counts = np.arange(n_words), word_ids, np.bincount(word_ids)
    for n in range(2, max(wanted) + 1):
        keep = counts[ids] >= 2
        keep &= pos <= n_words - n
        pos, ids = pos[keep], ids[keep]
        if not pos.size:
            break                       # no n-gram repeats, so no longer one does either
        # Group equal keys: what np.unique(keys, return_index=True, return_inverse=True) does,
        # without its overhead.  A stable sort puts each group's first occurrence first.
        keys = ids * n_words + word_ids[pos + (n - 1)]
        order = keys.argsort(kind="stable")
        ordered = keys[order]
        new = np.empty(ordered.size, dtype=bool)
        new[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        group = np.cumsum(new)
        group -= 1
        ids = np.empty_like(group)
        ids[order] = group
        first = order[new]              # per group, the index (into pos) of its first occurrence
        counts = np.bincount(group)
        if n in top_out and n_words >= n:
            best = int(counts.max())
            if best >= 2:
                at = int(pos[first[counts == best]].min())
                top_out[n] = min(1.0, best * int(starts[at + n] - starts[at]) / total_chars)
        if n in dup_out and n_words >= 2 * n:
            at = pos[order[~new]]       # the starts of repeats (not first occurrences)
            if at.size:
                edges = np.bincount(at, minlength=n_words + 1) - np.bincount(at + n, minlength=n_words + 1)
                covered = np.cumsum(edges[:n_words]) > 0
                dup_out[n] = int(lengths[covered].sum()) / total_chars
    return top_out, dup_out
