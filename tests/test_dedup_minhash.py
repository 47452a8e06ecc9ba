"""MinHash signatures (equal to datasketch's), LSH band keys and the S-curve."""
from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from filters.dedup.text import normalize_text, shingle_hashes, shingle_set, jaccard, word_shingles
from filters.dedup.minhash import (MinHasher, band_keys, candidate_probability, check_lsh_params, estimated_jaccard,
                             s_curve_midpoint, s_curve_threshold, signature_from_bytes, signature_to_bytes)


def _text(rng, n, vocab):
    return " ".join(rng.choice(vocab) for _ in range(n))


@pytest.fixture(scope="module")
def vocab():
    rng = random.Random(3)
    return ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöß", k=rng.randint(2, 9))) for _ in range(4000)]


@pytest.mark.parametrize("num_perm,seed", [(112, 1), (64, 42)])
def test_signatures_equal_datasketch(vocab, num_perm, seed):
    rng = random.Random(seed)
    hasher = MinHasher(num_perm, seed)
    texts = [normalize_text(_text(rng, rng.randint(1, 400), vocab)) for _ in range(20)]
    batch = [shingle_hashes(t, 5) for t in texts]
    ours = hasher.signatures(batch)
    for text, hv, sig in zip(texts, batch, ours):
        # datasketch hashes each shingle with its hashfunc; give it the same 32-bit input hashes.
        lookup = {s.encode(): int(h) & 0xFFFFFFFF for s, h in zip(word_shingles(text, 5), hv.tolist())}
        ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda b: lookup[b])
        ref.update_batch(list(lookup))
        assert sig.dtype == np.uint32
        assert np.array_equal(sig, ref.hashvalues)
        assert np.array_equal(hasher.signature(hv), sig)  # batch == one at a time


def test_batch_spanning_many_chunks_and_empty_docs(vocab):
    rng = random.Random(5)
    hasher = MinHasher(112, 1)
    batch = [shingle_hashes(normalize_text(_text(rng, rng.choice([0, 3, 2000, 9000]), vocab)), 5)
             for _ in range(12)]
    sigs = hasher.signatures(batch)
    for hv, sig in zip(batch, sigs):
        if hv.size == 0:
            assert sig is None
        else:
            assert np.array_equal(sig, hasher.signature(hv))


def test_estimated_jaccard_tracks_true_jaccard(vocab):
    rng = random.Random(11)
    hasher = MinHasher(112, 1)
    base = _text(rng, 600, vocab).split()
    for keep in (1.0, 0.9, 0.7, 0.5, 0.2):
        other = base[: int(600 * keep)] + _text(rng, 600 - int(600 * keep), vocab).split()
        a, b = normalize_text(" ".join(base)), normalize_text(" ".join(other))
        true = jaccard(shingle_set(a), shingle_set(b))
        est = estimated_jaccard(hasher.signature(shingle_hashes(a)), hasher.signature(shingle_hashes(b)))
        # 112 permutations: standard error sqrt(J(1-J)/112) <= 0.048; allow ~4 sigma.
        assert abs(est - true) < 0.19, (keep, true, est)
    with pytest.raises(ValueError):
        estimated_jaccard(np.zeros(3, np.uint32), np.zeros(4, np.uint32))


def test_band_keys_match_exactly_when_band_rows_match():
    sig = np.arange(112, dtype=np.uint32) * 7919
    keys = band_keys(sig, 14, 8)
    assert len(keys) == 14 and len(set(keys)) == 14  # band index is part of the key
    other = sig.copy()
    other[8 * 3 + 5] += 1  # change one row of band 3
    okeys = band_keys(other, 14, 8)
    assert [k == o for k, o in zip(keys, okeys)] == [i != 3 for i in range(14)]
    # Same rows in a different band do not collide.
    shifted = np.roll(sig, 8)
    assert not set(band_keys(shifted, 14, 8)) & set(keys)
    assert np.array_equal(signature_from_bytes(signature_to_bytes(sig)), sig)
    with pytest.raises(ValueError):
        band_keys(sig[:100], 14, 8)


def test_s_curve_formula():
    assert candidate_probability(0.0, 14, 8) == 0.0
    assert candidate_probability(1.0, 14, 8) == 1.0
    assert candidate_probability(0.8, 14, 8) == pytest.approx(1 - (1 - 0.8 ** 8) ** 14)
    mid = s_curve_midpoint(14, 8)
    assert candidate_probability(mid, 14, 8) == pytest.approx(0.5)
    assert 0.68 < mid < 0.69 and 0.71 < s_curve_threshold(14, 8) < 0.72
    probs = [candidate_probability(s / 20, 14, 8) for s in range(21)]
    assert probs == sorted(probs)
    with pytest.raises(ValueError):
        check_lsh_params(100, 14, 8)
    with pytest.raises(ValueError):
        check_lsh_params(112, 0, 8)


def test_lsh_candidate_rate_follows_s_curve(vocab):
    # Empirical check of the formula on real signatures: pairs at a known Jaccard become
    # candidates about as often as 1 - (1 - s^r)^b predicts.
    rng = random.Random(21)
    hasher = MinHasher(112, 1)
    trials, hits, expected = 150, 0, 0.0
    for _ in range(trials):
        base = _text(rng, 300, vocab).split()
        cut = 215  # replace the tail: J ~ 0.55 for 5-grams
        other = base[:cut] + _text(rng, 300 - cut, vocab).split()
        a, b = normalize_text(" ".join(base)), normalize_text(" ".join(other))
        true = jaccard(shingle_set(a), shingle_set(b))
        expected += candidate_probability(true, 6, 4)
        ka = band_keys(hasher.signature(shingle_hashes(a)), 6, 4)
        kb = band_keys(hasher.signature(shingle_hashes(b)), 6, 4)
        hits += any(x == y for x, y in zip(ka, kb))
    expected /= trials
    # Binomial(150, ~0.5): sd ~ 6 hits; 4 sd margin.
    assert abs(hits - expected * trials) < 25, (hits, expected * trials)
