"""The Megatron indexed-dataset writer/reader and manifest verification.

The ``.idx`` layout is checked with a small parser written here from Megatron-LM's documented
layout (magic, version, dtype code, counts, int32 sizes, int64 byte pointers, int64 document
index), not with the reader under test.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct

import numpy as np
import pytest

from tokenization.indexed import IndexedDataset, IndexedDatasetError, dtype_for_vocab, write_indexed
from tokenization.manifest import ManifestError, build_manifest, manifest_json
from tokenization.shards import ShardVerificationError, load_manifest, open_split


def parse_idx(path):
    """Independent reader of Megatron's .idx layout."""
    data = open(path, "rb").read()
    assert data[:9] == b"MMIDIDX\x00\x00"
    version, = struct.unpack_from("<Q", data, 9)
    code, = struct.unpack_from("<B", data, 17)
    n_seq, n_doc = struct.unpack_from("<QQ", data, 18)
    off = 34
    sizes = list(struct.unpack_from(f"<{n_seq}i", data, off)); off += 4 * n_seq
    pointers = list(struct.unpack_from(f"<{n_seq}q", data, off)); off += 8 * n_seq
    doc_idx = list(struct.unpack_from(f"<{n_doc}q", data, off)); off += 8 * n_doc
    assert off == len(data), "trailing bytes after the document index"
    return {"version": version, "code": code, "sizes": sizes, "pointers": pointers, "doc_idx": doc_idx}


DOCS = [[5, 6, 7, 0], [0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0], [300, 0]]


def test_idx_layout_matches_megatron(tmp_path):
    prefix = str(tmp_path / "s")
    info = write_indexed(prefix, DOCS, vocab_size=1000)
    idx = parse_idx(prefix + ".idx")
    assert idx["version"] == 1
    assert idx["code"] == 8  # Megatron DType.uint16
    assert idx["sizes"] == [4, 1, 10, 2]
    assert idx["pointers"] == [0, 8, 10, 30]  # byte offsets: 2 bytes per uint16 token
    assert idx["doc_idx"] == [0, 1, 2, 3, 4]
    raw = open(prefix + ".bin", "rb").read()
    assert raw == struct.pack(f"<{sum(map(len, DOCS))}H", *[t for d in DOCS for t in d])
    assert info["tokens"] == 17 and info["documents"] == 4
    assert info["sha256_bin"] == hashlib.sha256(raw).hexdigest()
    assert info["sha256_idx"] == hashlib.sha256(open(prefix + ".idx", "rb").read()).hexdigest()


def test_dtype_follows_megatron_rule(tmp_path):
    assert dtype_for_vocab(65499) == np.uint16
    assert dtype_for_vocab(65500) == np.int32
    prefix = str(tmp_path / "big")
    docs = [[70000, 65535, 1], [100000]]
    write_indexed(prefix, docs, vocab_size=100_001)
    idx = parse_idx(prefix + ".idx")
    assert idx["code"] == 4  # Megatron DType.int32
    assert idx["pointers"] == [0, 12]
    ds = IndexedDataset(prefix)
    assert ds.dtype == np.int32
    assert ds[0].tolist() == [70000, 65535, 1] and ds[1].tolist() == [100000]


def test_token_out_of_vocab_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="out of range"):
        write_indexed(str(tmp_path / "x"), [[1, 2, 1000]], vocab_size=1000)
    assert os.listdir(tmp_path) == []  # nothing half-written left behind


def test_reader_documents_and_memmap(tmp_path):
    prefix = str(tmp_path / "s")
    write_indexed(prefix, DOCS, vocab_size=1000)
    ds = IndexedDataset(prefix)
    assert len(ds) == 4
    assert [ds[i].tolist() for i in range(4)] == DOCS
    assert ds[-1].tolist() == [300, 0]
    assert isinstance(ds.tokens, np.memmap)
    assert ds.tokens.tolist() == [t for d in DOCS for t in d]
    assert ds.document_lengths().tolist() == [4, 1, 10, 2]
    with pytest.raises(IndexError):
        ds[4]
    clone = pickle.loads(pickle.dumps(ds))
    assert len(pickle.dumps(ds)) < 200  # the path travels, not the tokens
    assert [clone[i].tolist() for i in range(4)] == DOCS


def test_reader_accepts_several_sequences_per_document(tmp_path):
    # Megatron's preprocess_data with sentence splitting: doc 0 = sequences 0,1; doc 1 = sequence 2.
    prefix = tmp_path / "m"
    prefix.with_suffix(".bin").write_bytes(struct.pack("<6H", 1, 2, 3, 4, 5, 6))
    body = struct.pack("<9sQBQQ", b"MMIDIDX\x00\x00", 1, 8, 3, 3)
    body += struct.pack("<3i", 2, 1, 3) + struct.pack("<3q", 0, 4, 6) + struct.pack("<3q", 0, 2, 3)
    prefix.with_suffix(".idx").write_bytes(body)
    ds = IndexedDataset(str(prefix))
    assert len(ds) == 2
    assert ds[0].tolist() == [1, 2, 3] and ds[1].tolist() == [4, 5, 6]


def test_empty_dataset(tmp_path):
    prefix = str(tmp_path / "e")
    info = write_indexed(prefix, [], vocab_size=1000)
    assert info["documents"] == 0
    assert parse_idx(prefix + ".idx")["doc_idx"] == [0]
    ds = IndexedDataset(prefix)
    assert len(ds) == 0 and ds.tokens.size == 0


def test_failed_write_leaves_no_files(tmp_path):
    def docs():
        yield [1, 2]
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        write_indexed(str(tmp_path / "s"), docs(), vocab_size=1000)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("damage, message", [
    ("truncate_bin", "truncated"),
    ("extend_bin", "longer than its index"),
    ("truncate_idx", "truncated or corrupt index"),
    ("bad_magic", "not a Megatron indexed dataset"),
    ("bad_pointer", "pointers do not match"),
])
def test_damaged_shard_gives_clear_error(tmp_path, damage, message):
    prefix = str(tmp_path / "s")
    write_indexed(prefix, DOCS, vocab_size=1000)
    bin_path, idx_path = prefix + ".bin", prefix + ".idx"
    if damage == "truncate_bin":
        os.truncate(bin_path, os.path.getsize(bin_path) - 3)
    elif damage == "extend_bin":
        with open(bin_path, "ab") as fh:
            fh.write(b"\0\0")
    elif damage == "truncate_idx":
        os.truncate(idx_path, os.path.getsize(idx_path) - 8)
    elif damage == "bad_magic":
        data = bytearray(open(idx_path, "rb").read()); data[0:3] = b"XXX"
        open(idx_path, "wb").write(bytes(data))
    elif damage == "bad_pointer":
        data = bytearray(open(idx_path, "rb").read())
        struct.pack_into("<q", data, 34 + 4 * 4 + 8, 9)  # pointer of sequence 1
        open(idx_path, "wb").write(bytes(data))
    with pytest.raises(IndexedDatasetError, match=message) as err:
        IndexedDataset(prefix)
    assert os.path.basename(prefix) in str(err.value)


def _shards_dir(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    entries = []
    for name, split, docs in (("train-00000", "train", DOCS[:2]), ("train-00001", "train", DOCS[2:]),
                              ("val-00000", "val", [[9, 0]])):
        info = write_indexed(str(d / name), docs, vocab_size=1000)
        entries.append({"file": name, "split": split, **{k: info[k] for k in
                        ("tokens", "documents", "sha256_bin", "sha256_idx")}})
    (d / "tokenizer.json").write_text("{}")
    tok = {"file": "tokenizer.json", "sha256": "0" * 64, "vocab_size": 1000, "eot_token": "<|endoftext|>",
           "eot_id": 0}
    (d / "manifest.json").write_bytes(manifest_json(build_manifest(tokenizer=tok, dtype="uint16",
                                                                   shards=entries, config={"seed": 0})))
    return d


def test_open_split_verifies_and_orders(tmp_path):
    d = _shards_dir(tmp_path)
    train = open_split(d, "train")
    assert [os.path.basename(ds.path_prefix) for ds in train] == ["train-00000", "train-00001"]
    assert [ds[i].tolist() for ds in train for i in range(len(ds))] == DOCS
    assert [ds[0].tolist() for ds in open_split(d, "val")] == [[9, 0]]
    m = load_manifest(d)
    assert m["splits"]["train"] == {"shards": 2, "documents": 4, "tokens": 17}
    with pytest.raises(ValueError, match="unknown split"):
        open_split(d, "test")


def test_corrupted_shard_named_in_error(tmp_path):
    d = _shards_dir(tmp_path)
    path = d / "train-00001.bin"
    data = bytearray(path.read_bytes()); data[4] ^= 0xFF
    path.write_bytes(bytes(data))  # same size: only the checksum can tell
    with pytest.raises(ShardVerificationError, match="train-00001.bin"):
        open_split(d, "train")
    assert len(open_split(d, "train", verify=False)) == 2  # the trainer may opt out
    open_split(d, "val")  # other split unaffected


def test_missing_shard_and_manifest_errors(tmp_path):
    d = _shards_dir(tmp_path)
    os.remove(d / "val-00000.idx")
    with pytest.raises(ShardVerificationError, match="val-00000.idx"):
        open_split(d, "val")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        open_split(tmp_path, "train")
    (d / "manifest.json").write_text(json.dumps({"shards": []}))
    with pytest.raises(ManifestError, match="missing key"):
        load_manifest(d)


def test_manifest_count_mismatch(tmp_path):
    d = _shards_dir(tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["shards"][0]["documents"] += 1
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ShardVerificationError, match="train-00000"):
        open_split(d, "train")
