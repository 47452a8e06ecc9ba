"""MinHash speed: signatures per second per core on ~1,000-word documents.

    .venv/bin/python bench/bench_minhash.py [--docs 2000] [--words 1000] [--realweb]

Compares, on the same texts and one core:
  * ours: normalise -> vectorised shingle hashes -> batched NumPy permutations (datasketch's
    affine32 scheme), as the pipeline runs it;
  * datasketch update_batch with its default sha1 hash over the same shingle strings;
  * datasketch per-shingle update() (the plain loop).
Times are CPU seconds of this (single-threaded) process, so figures are per core even on a busy
machine.  Prints figures only; no thresholds.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from datasketch import MinHash

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from filters.dedup.text import normalize_text, normalized_bytes, shingle_hashes, word_shingles  # noqa: E402
from filters.dedup.minhash import MinHasher  # noqa: E402


def make_docs(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöüß", k=rng.randint(2, 10))) for _ in range(20000)]
    punct = ["", "", "", "", ",", ".", "!", " 2024", " —", ":"]
    docs = []
    for _ in range(n):
        ws = [rng.choice(vocab).capitalize() if rng.random() < 0.1 else rng.choice(vocab) for _ in range(words)]
        lines = [" ".join(w + rng.choice(punct) for w in ws[i:i + 20]) for i in range(0, words, 20)]
        docs.append("\n".join(lines))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--words", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--realweb", action="store_true",
                    help="use the text of the real pages in ../shared/data/realweb (mean ~830 words) "
                         "instead of synthetic ~1k-word documents")
    args = ap.parse_args()
    if args.realweb:
        from bench.bench_dedup import realweb_texts  # noqa: PLC0415

        pages = [p["text"] for p in realweb_texts()]
        docs = [pages[i % len(pages)] for i in range(args.docs)]
        args.words = round(sum(len(d.split()) for d in docs) / len(docs))
    else:
        docs = make_docs(args.docs, args.words)
    hasher = MinHasher(112, 1)
    hasher.signatures([shingle_hashes(normalize_text(docs[0]))])  # warm-up (class table)

    t0 = time.process_time()
    sigs = []
    for i in range(0, len(docs), args.batch):
        chunk = docs[i:i + args.batch]
        sigs += hasher.signatures([shingle_hashes(normalized_bytes(d)) for d in chunk])
    ours = time.process_time() - t0

    t0 = time.process_time()
    norms = [normalized_bytes(d) for d in docs]
    t_norm = time.process_time() - t0
    t0 = time.process_time()
    hashes = [shingle_hashes(n) for n in norms]
    t_shingle = time.process_time() - t0
    t0 = time.process_time()
    for i in range(0, len(hashes), args.batch):
        hasher.signatures(hashes[i:i + args.batch])
    t_perm = time.process_time() - t0

    sample = docs[: max(1, min(len(docs), 300))]
    shingles = [[s.encode() for s in word_shingles(normalize_text(d))] for d in sample]
    t0 = time.process_time()
    for sh in shingles:
        m = MinHash(num_perm=112, seed=1)
        m.update_batch(sh)
    ds_batch = time.process_time() - t0
    t0 = time.process_time()
    for sh in shingles:
        m = MinHash(num_perm=112, seed=1)
        for s in sh:
            m.update(s)
    ds_update = time.process_time() - t0

    n = len(docs)
    print(f"docs: {n} x ~{args.words} words, 112 permutations (14 bands x 8 rows), 5-gram shingles, 1 core")
    print(f"ours end-to-end (normalise + shingle hashes + signatures): {n / ours:8.0f} signatures/s")
    print(f"  of which normalise {t_norm / n * 1e6:6.1f} us/doc, shingle hashes {t_shingle / n * 1e6:6.1f} us/doc, "
          f"permutations+min {t_perm / n * 1e6:6.1f} us/doc")
    print(f"datasketch update_batch (sha1 per shingle, shingles given): {len(sample) / ds_batch:8.0f} signatures/s")
    print(f"datasketch per-shingle update()     (shingles given):        {len(sample) / ds_update:8.0f} signatures/s")


if __name__ == "__main__":
    main()
