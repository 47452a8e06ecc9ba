"""Vectorised MinHash signatures, LSH band keys and the LSH S-curve.

The permutation scheme is datasketch's (2.x default, ``scheme="affine32"``): each 32-bit input
hash is pre-mixed with the MurmurHash3 32-bit finaliser, then permutation k maps it to
``a_k * h + b_k mod 2^32`` with ``(a, b)`` drawn by datasketch from ``RandomState(seed)``.  We take
``(a, b)`` from datasketch itself and apply them to whole batches of documents with NumPy, because
``datasketch.MinHash.update_batch`` calls a Python hash function once per shingle, which costs
more than the permutations.  ``tests/test_dedup_minhash.py`` checks that our signatures equal
datasketch's for the same input hashes.

The input hash of a shingle is the low 32 bits of ``filters.dedup.text.shingle_hashes``.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np

_U32 = np.uint32
_EMPTY = np.iinfo(np.uint32).max
# Shingles per block of the (permutations x shingles) matrix: 112 x 16384 uint32 = 7 MB.
_CHUNK_ROWS = 16384


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (the pre-mix of datasketch's affine32 scheme)."""
    h = h.astype(_U32, copy=True)
    h ^= h >> _U32(16)
    h *= _U32(0x85EBCA6B)
    h ^= h >> _U32(13)
    h *= _U32(0xC2B2AE35)
    h ^= h >> _U32(16)
    return h


def datasketch_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` of datasketch's affine32 scheme for ``num_perm`` permutations and ``seed``."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return np.asarray(a, dtype=_U32), np.asarray(b, dtype=_U32)


class MinHasher:
    """Computes datasketch-compatible MinHash signatures from shingle hashes."""

    def __init__(self, num_perm: int = 112, seed: int = 1):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm = num_perm
        self.seed = seed
        self.a, self.b = datasketch_permutations(num_perm, seed)

    def signature(self, hashes: np.ndarray) -> np.ndarray | None:
        """Signature (uint32[num_perm]) of one document's shingle hashes; None when it has none."""
        sigs = self.signatures([hashes])
        return sigs[0] if sigs[0] is not None else None

    def signatures(self, batch: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Signatures of many documents at once (one NumPy pass over all their shingles)."""
        out: list[np.ndarray | None] = [None] * len(batch)
        nonempty = [i for i, h in enumerate(batch) if h.size]
        if not nonempty:
            return out
        hv = np.concatenate([batch[i] for i in nonempty]).astype(_U32)  # low 32 bits
        hv = _fmix32(hv)
        sizes = np.fromiter((batch[i].size for i in nonempty), dtype=np.int64, count=len(nonempty))
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        sig = np.empty((len(nonempty), self.num_perm), dtype=_U32)
        # Process whole documents per chunk so reduceat never splits one.
        doc = 0
        while doc < len(nonempty):
            last = doc
            rows = 0
            while last < len(nonempty) and (rows == 0 or rows + sizes[last] <= _CHUNK_ROWS):
                rows += int(sizes[last])
                last += 1
            lo = int(starts[doc])
            # (permutations x shingles): the min runs along contiguous memory, ~5x faster
            # than the (shingles x permutations) layout.
            block = np.multiply.outer(self.a, hv[lo:lo + rows])
            block += self.b[:, None]
            sig[doc:last] = np.minimum.reduceat(block, starts[doc:last] - lo, axis=1).T
            doc = last
        for j, i in enumerate(nonempty):
            out[i] = sig[j]
        return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal signature positions: an unbiased estimate of the Jaccard similarity."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures differ in length: {sig_a.shape} vs {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.size


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One LSH bucket key per band: band index + 8-byte digest of that band's ``rows`` values.

    Two documents share the key of band i exactly when their signatures agree on all rows of
    band i (up to a 2^-64 digest collision).  Little-endian bytes keep keys machine-independent.
    """
    if bands * rows > sig.size:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations, "
                         f"signature has {sig.size}")
    raw = sig[: bands * rows].astype("<u4").tobytes()
    width = rows * 4
    return [i.to_bytes(2, "big") + hashlib.blake2b(raw[i * width:(i + 1) * width], digest_size=8).digest()
            for i in range(bands)]


def signature_to_bytes(sig: np.ndarray) -> bytes:
    return sig.astype("<u4").tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4").astype(_U32)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(two documents with Jaccard ``similarity`` share at least one band): 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - similarity ** rows) ** bands


def s_curve_threshold(bands: int, rows: int) -> float:
    """The usual approximation (1/b)^(1/r) of the similarity where the S-curve rises steepest."""
    return (1.0 / bands) ** (1.0 / rows)


def s_curve_midpoint(bands: int, rows: int) -> float:
    """The similarity at which the candidate probability is exactly 1/2."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def s_curve_table(bands: int, rows: int, similarities: Iterable[float] | None = None) -> list[tuple[float, float]]:
    if similarities is None:
        similarities = [round(0.1 * i, 2) for i in range(1, 10)] + [0.65, 0.75, 0.85, 0.95]
    return [(s, candidate_probability(s, bands, rows)) for s in sorted(similarities)]


def check_lsh_params(num_perm: int, bands: int, rows: int) -> None:
    if bands < 1 or rows < 1:
        raise ValueError(f"bands and rows must be >= 1 (got bands={bands}, rows={rows})")
    if bands * rows > num_perm:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {num_perm}")
