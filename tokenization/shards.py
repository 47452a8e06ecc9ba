"""How documents become shards (pure functions the pipeline uses) and how a trainer opens them.

Every document gets ``h = sha256(f"{seed}\\0{doc_id}")`` (``tokenization.dochash.doc_hash``).
Disjoint slices of ``h`` decide, with no global state:

* the split: bytes 8..16 as a fraction of 2**64 below ``val_fraction`` -> ``val``, else ``train``
  (a document, and every exact copy of it, lands in exactly one split);
* the shard bucket: bytes 16..24 modulo the split's bucket count;
* the order inside a shard: ``h`` itself (ties: doc id, then the tokens).

Reading the buckets in order, each sorted by ``h``, is the global shuffle.
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from tokenization.dochash import doc_hash
from tokenization.indexed import IndexedDataset, IndexedDatasetError
from tokenization.manifest import ManifestError, load_manifest, sha256_file

__all__ = ["doc_hash", "split_of", "bucket_of", "buckets_for", "shard_name", "load_manifest",
           "open_split", "load_tokenizer", "verify_shards", "ShardVerificationError", "split_documents",
           "split_sizes", "assign_bucket"]

_TWO64 = 1 << 64


class ShardVerificationError(IndexedDatasetError):
    """A shard's bytes do not match the manifest; the message names the shard file."""


def split_of(h: bytes, val_fraction: float) -> str:
    return "val" if int.from_bytes(h[8:16], "big") < val_fraction * _TWO64 else "train"


def bucket_of(h: bytes, buckets: int) -> int:
    return int.from_bytes(h[16:24], "big") % buckets


def buckets_for(tokens: int, shard_tokens: int) -> int:
    """Bucket count so that the average shard holds at most ``shard_tokens`` tokens."""
    return max(1, math.ceil(tokens / shard_tokens))


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}"


# The tokenize pipeline's encoded elements are (split, h, doc_id, tokens as bytes, text bytes).
def split_sizes(element, itemsize: int):
    """``(split, (1 document, its tokens, its text bytes))``: summed per split into the totals."""
    split, _, _, tokens, text_bytes = element
    return split, (1, len(tokens) // itemsize, text_bytes)


def assign_bucket(element, totals: Mapping[str, tuple[int, int, int]], shard_tokens: int):
    """``((split, bucket), (h, doc_id, tokens))``: the bucket from ``h`` and the split's token total."""
    split, h, doc_id, tokens, _ = element
    n = buckets_for(totals[split][1], shard_tokens)
    return (split, bucket_of(h, n)), (h, doc_id, tokens)


# --- reading ---------------------------------------------------------------------------------------

def _shards_of(manifest: dict, split: str) -> list[dict]:
    known = sorted({s["split"] for s in manifest["shards"]} | {"train", "val"})
    if split not in known:
        raise ValueError(f"unknown split {split!r}; expected one of {known}")
    return [s for s in manifest["shards"] if s["split"] == split]


def _verify_one(shards_dir: str, shard: dict) -> None:
    prefix = os.path.join(shards_dir, shard["file"])
    for ext, key in ((".bin", "sha256_bin"), (".idx", "sha256_idx")):
        path = prefix + ext
        if not os.path.isfile(path):
            raise ShardVerificationError(f"shard file missing: {path}")
        got = sha256_file(path)
        if got != shard[key]:
            raise ShardVerificationError(f"shard {path} is corrupt or was replaced: sha256 {got[:16]}... "
                                         f"but the manifest records {shard[key][:16]}...")


def _check_token_ids(manifest: dict, shard: dict, ds: IndexedDataset, scan: bool) -> None:
    """Every token id of the shard must be below the tokenizer's vocabulary size (a larger id
    crashes the trainer's embedding lookup, or trains silently inside its padded vocabulary).
    Uses the manifest's ``max_token_id``; reads the tokens when ``scan`` or when it is absent."""
    vocab = manifest["tokenizer"]["vocab_size"]
    top = shard.get("max_token_id")
    if scan or top is None:
        found = ds.token_range()
        if found is None:
            return
        if found[0] < 0:
            raise ShardVerificationError(f"shard {ds.bin_path}: negative token id {found[0]}")
        if top is not None and top != found[1]:
            raise ShardVerificationError(f"shard {ds.bin_path}: largest token id is {found[1]}, "
                                         f"the manifest records {top}")
        top = found[1]
    if top >= vocab:
        raise ShardVerificationError(
            f"shard {ds.bin_path}: token id {top} is outside the vocabulary of {vocab} "
            f"({manifest['tokenizer']['file']}): the shards were not made with this tokenizer")


def open_split(shards_dir: str | os.PathLike, split: str, verify: bool = True,
               scan_ids: bool = False) -> list[IndexedDataset]:
    """Memory-mapped datasets of one split, in manifest order (the shuffled order).

    Token ids are checked against the vocabulary size (from the manifest's ``max_token_id``;
    ``scan_ids`` reads every token instead, as does a manifest without it)."""
    shards_dir = os.fspath(shards_dir)
    manifest = load_manifest(shards_dir)
    out = []
    for shard in _shards_of(manifest, split):
        if verify:
            _verify_one(shards_dir, shard)
        ds = IndexedDataset(os.path.join(shards_dir, shard["file"]))
        if len(ds) != shard["documents"] or ds.total_tokens != shard["tokens"]:
            raise ShardVerificationError(
                f"shard {ds.path_prefix}: {len(ds)} documents / {ds.total_tokens} tokens, manifest says "
                f"{shard['documents']} / {shard['tokens']}")
        if np.dtype(ds.dtype).name != manifest.get("format", {}).get("dtype", np.dtype(ds.dtype).name):
            raise ShardVerificationError(f"shard {ds.path_prefix}: dtype {ds.dtype} differs from the manifest")
        _check_token_ids(manifest, shard, ds, scan_ids)
        out.append(ds)
    return out


def split_documents(datasets: list[IndexedDataset]):
    """Iterate the documents of a split in order."""
    for ds in datasets:
        for i in range(len(ds)):
            yield ds[i]


def load_tokenizer(shards_dir: str | os.PathLike):
    """The tokenizer the shards were made with, checked against the manifest's hash."""
    from tokenization.tokenizer import EOT_TOKEN, load_tokenizer_file

    shards_dir = os.fspath(shards_dir)
    manifest = load_manifest(shards_dir)
    info = manifest["tokenizer"]
    path = os.path.join(shards_dir, info["file"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer file missing: {path}")
    if sha256_file(path) != info["sha256"]:
        raise ManifestError(f"{path} does not match the sha256 in the manifest")
    tok = load_tokenizer_file(path)
    if tok.token_to_id(EOT_TOKEN) != info["eot_id"]:
        raise ManifestError(f"{path}: {EOT_TOKEN} id differs from the manifest")
    return tok


def verify_shards(shards_dir: str | os.PathLike) -> dict[str, Any]:
    """Check every shard and the tokenizer; returns counts, raises on the first problem."""
    shards_dir = os.fspath(shards_dir)
    manifest = load_manifest(shards_dir)
    load_tokenizer(shards_dir)
    counts = {}
    for split in ("train", "val"):
        datasets = open_split(shards_dir, split, verify=True, scan_ids=True)
        counts[split] = {"shards": len(datasets), "documents": sum(len(d) for d in datasets),
                         "tokens": sum(d.total_tokens for d in datasets)}
    return {"manifest": manifest, "splits": counts}
