"""The per-document hash every placement decision derives from: ``doc_hash(seed, doc_id)``.

``h = sha256(f"{seed}\\0{doc_id}")``.  ``tokenization.shards`` slices it for the split, the shard
bucket and the order inside a shard; ``tokenization.tokenizer.sample_texts`` orders documents by it
to draw the tokenizer-training sample.  It lives in its own module so that those two import it
without importing each other (no cycle).  Pure stdlib.
"""
from __future__ import annotations

import hashlib

__all__ = ["doc_hash"]


def doc_hash(seed: int, doc_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode("utf-8")).digest()
