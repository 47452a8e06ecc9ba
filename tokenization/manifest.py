"""``manifest.json``: what a shards directory holds and how to check it.

Written last by the tokenize stage, so a directory with a manifest is complete.  Shard entries name
file prefixes relative to the directory; a reader verifies each ``.bin``/``.idx`` against the
sha256 recorded here before trusting it.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterable, Mapping

MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"
FORMAT = {"name": "megatron-indexed-dataset", "index_version": 1}
SPLITS = ("train", "val")
_SHARD_KEYS = ("file", "split", "tokens", "documents", "sha256_bin", "sha256_idx")
# What a written shard reports (tokenization.indexed.write_indexed) and its manifest entry keeps.
# ``max_token_id`` (largest id in the shard, null when empty) is newer: manifests without it load,
# and readers then scan the shard instead (tokenization.shards.open_split).
SHARD_FIELDS = ("tokens", "documents", "sha256_bin", "sha256_idx", "max_token_id")


class ManifestError(ValueError):
    """A manifest is missing, malformed or disagrees with the files; the message names the file."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def build_manifest(*, tokenizer: Mapping[str, Any], dtype: str, shards: Iterable[Mapping[str, Any]],
                   config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict:
    """The manifest dict; shards ordered by split then file so the bytes never depend on run order."""
    order = {s: i for i, s in enumerate(SPLITS)}
    shard_list = sorted((dict(s) for s in shards), key=lambda s: (order.get(s["split"], 99), s["file"]))
    for s in shard_list:
        missing = [k for k in _SHARD_KEYS if k not in s]
        if missing:
            raise ValueError(f"shard entry {s.get('file')!r} lacks {missing}")
    splits = {}
    for split in SPLITS:
        mine = [s for s in shard_list if s["split"] == split]
        splits[split] = {"shards": len(mine), "documents": sum(s["documents"] for s in mine),
                         "tokens": sum(s["tokens"] for s in mine)}
    manifest = {"format": dict(FORMAT, dtype=dtype), "tokenizer": dict(tokenizer), "splits": splits,
                "shards": shard_list, "config": dict(config)}
    if extra:
        manifest.update(extra)
    return manifest


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_manifest(data: bytes, where: str) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: top level must be an object")
    for key in ("tokenizer", "shards", "config"):
        if key not in manifest:
            raise ManifestError(f"{where}: missing key {key!r}")
    tok = manifest["tokenizer"]
    for key in ("file", "sha256", "vocab_size", "eot_token", "eot_id"):
        if key not in tok:
            raise ManifestError(f"{where}: tokenizer entry lacks {key!r}")
    for i, shard in enumerate(manifest["shards"]):
        missing = [k for k in _SHARD_KEYS if k not in shard]
        if missing:
            raise ManifestError(f"{where}: shard #{i} lacks {missing}")
        if shard["split"] not in SPLITS:
            raise ManifestError(f"{where}: shard {shard['file']!r} has unknown split {shard['split']!r}")
        top = shard.get("max_token_id")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 0):
            raise ManifestError(f"{where}: shard {shard['file']!r} has max_token_id {top!r} "
                                "(expected a non-negative integer or null)")
    return manifest


def load_manifest(shards_dir: str | os.PathLike) -> dict:
    path = os.path.join(os.fspath(shards_dir), MANIFEST_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {shards_dir} (not a shards directory, or the "
                                "tokenize run did not finish)")
    with open(path, "rb") as fh:
        return parse_manifest(fh.read(), path)
