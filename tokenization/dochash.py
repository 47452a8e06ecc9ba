"""The per-document hash every placement decision derives from: ``doc_hash(seed, doc_id)``.

``h = sha256(f"{seed}\\0{doc_id}")``.  ``tokenization.shards`` slices it for the split, the shard
bucket and the order inside a shard; ``tokenization.tokenizer.sample_texts`` orders documents by it
to draw the tokenizer-training sample.  It lives in its own module so that those two import it
without importing each other (no cycle).  Pure stdlib.
"""
from __future__ import annotations

import hashlib

__all__ = ["doc_hash", "doc_id_for", "row_doc_id"]


def doc_id_for(key: str) -> str:
    """Stable 16 hex digits from any key (sha256).  ``pipelines.schema.record_doc_id`` and
    ``row_doc_id`` below choose the key: together they are the project's one doc_id policy."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def row_doc_id(doc_id: object, url: str | None, text: str) -> str:
    """A row's doc_id: its own when set, else derived from url + text (Parquet inputs without a
    ``doc_id`` column).  refine, dedup, tokenize and tokenizer training all call this, so an input
    without ids gets the same ids in every stage."""
    if doc_id is not None and doc_id != "":
        return str(doc_id)
    return doc_id_for(f"{url or ''}\x00{text}")


def doc_hash(seed: int, doc_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode("utf-8")).digest()
