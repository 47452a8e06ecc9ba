"""Token windows from memory-mapped shards.

The training stream is stateless: sample ``i`` of the run is the window starting at
``hash(seed, i)`` in the concatenation of all training shards.  Step ``s`` uses samples
``[s * G, (s + 1) * G)`` with ``G = grad_accum * batch_size`` (the global batch), and each rank takes
a contiguous slice of them.  So the data a step sees depends only on (seed, step) -- not on the
number of ranks, not on what ran before -- which makes resuming exact (the position is the step)
and lets a 2-rank run see the same global batch as a 1-rank run.

Windows may cross document boundaries; documents end with ``<|endoftext|>`` in the stream, as in
GPT-2 training.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 finaliser: a well-mixed 64-bit hash of each uint64 element."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x & _MASK64


class TokenStream:
    """A list of 1-D token arrays (memmaps) seen as one stream of fixed-length windows."""

    def __init__(self, arrays: Sequence[np.ndarray], window: int):
        if window < 2:
            raise ValueError("window must be at least 2 tokens (input + target)")
        self.arrays = [a for a in arrays]
        self.window = window
        # a shard of n tokens holds n - window + 1 window starts
        starts = np.array([max(0, len(a) - window + 1) for a in self.arrays], dtype=np.int64)
        self.cum_starts = np.concatenate([[0], np.cumsum(starts)])
        self.n_starts = int(self.cum_starts[-1])
        self.n_tokens = int(sum(len(a) for a in self.arrays))
        if self.n_starts == 0:
            raise ValueError(f"no shard holds a full window of {window} tokens "
                             f"({len(self.arrays)} shards, {self.n_tokens} tokens): "
                             "use a smaller block_size or more data")

    def window_at(self, start: int) -> np.ndarray:
        """The window with global start index ``start`` (0 <= start < n_starts)."""
        shard = int(np.searchsorted(self.cum_starts, start, side="right")) - 1
        off = start - int(self.cum_starts[shard])
        return np.asarray(self.arrays[shard][off:off + self.window])

    def windows(self, starts: np.ndarray) -> np.ndarray:
        out = np.empty((len(starts), self.window), dtype=np.int64)
        for row, s in enumerate(starts):
            out[row] = self.window_at(int(s))
        return out


class RandomWindows:
    """Random training windows of ``block_size + 1`` tokens, a pure function of (seed, index)."""

    def __init__(self, arrays: Sequence[np.ndarray], block_size: int, seed: int):
        self.stream = TokenStream(arrays, block_size + 1)
        self.seed = int(seed)

    def starts(self, sample_indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(sample_indices, dtype=np.uint64)
        with np.errstate(over="ignore"):
            keyed = splitmix64(idx ^ splitmix64(np.array([self.seed], dtype=np.uint64)))
        # modulo bias is below n_starts / 2**64: negligible for any real corpus
        return (keyed % np.uint64(self.stream.n_starts)).astype(np.int64)

    def batch(self, first_sample: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.starts(np.arange(first_sample, first_sample + batch_size, dtype=np.uint64))
        w = torch.from_numpy(self.stream.windows(starts))
        return w[:, :-1], w[:, 1:]

    def micro_batch(self, step: int, micro: int, batch_size: int, grad_accum: int):
        """Micro-batch ``micro`` (0 .. grad_accum-1, counted over all ranks) of optimiser step ``step``."""
        return self.batch(step * grad_accum * batch_size + micro * batch_size, batch_size)


def eval_windows(arrays: Sequence[np.ndarray], block_size: int, max_windows: int | None = None):
    """Non-overlapping windows (stride block_size) over each array, so every token but the first of
    each array is predicted exactly once.  The last, shorter window of an array is kept.

    With ``max_windows`` the windows are spread evenly over the whole set instead of taking the
    first ones, so a cheap periodic eval still covers every shard.
    Returns a list of int64 arrays of length <= block_size + 1.
    """
    spans = []
    for ai, a in enumerate(arrays):
        n = len(a)
        for s in range(0, max(n - 1, 0), block_size):
            spans.append((ai, s, min(s + block_size + 1, n)))
    if max_windows is not None and len(spans) > max_windows:
        pick = np.linspace(0, len(spans) - 1, max_windows).round().astype(np.int64)
        spans = [spans[i] for i in pick]
    return [np.asarray(arrays[ai][s:e], dtype=np.int64) for ai, s, e in spans]


def open_shards(shards_dir, split: str, verify: bool = True) -> list[np.ndarray]:
    """Token arrays (memmaps) of one split of a tokenized-shards directory.

    Refuses (ShardVerificationError, a ValueError naming the .bin file) a shard with a token id at
    or above the tokenizer's vocabulary size: from the manifest's ``max_token_id``, or by reading
    the shard when an older manifest lacks it (``tokenization.shards.open_split``)."""
    from tokenization.shards import open_split

    datasets = open_split(shards_dir, split, verify=verify)
    if not datasets:
        raise ValueError(f"{shards_dir}: no '{split}' shards in the manifest")
    return [ds.tokens for ds in datasets]


def unigram_entropy(arrays: Sequence[np.ndarray], vocab_size: int) -> float:
    """Entropy (nats/token) of the unigram distribution of the tokens: the loss of the best
    context-free model, a floor any model that uses context must beat."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for a in arrays:
        c = np.bincount(np.asarray(a), minlength=vocab_size)
        if len(c) > vocab_size:
            raise ValueError(f"token id {len(c) - 1} is outside the vocabulary of {vocab_size}")
        counts += c
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
