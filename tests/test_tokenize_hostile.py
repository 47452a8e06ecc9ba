"""Hostile inputs for tokenization: huge documents (bounded memory per tokenizer call, dead letter
over the cap) and token ids outside the vocabulary (recorded per shard, refused by verify)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main as cli_main
from tokenization.__main__ import main as tok_main
from tokenization.encoding import encode_documents, text_pieces
from tokenization.indexed import IndexedDataset, write_indexed
from tokenization.manifest import build_manifest, load_manifest, manifest_json, sha256_file
from tokenization.shards import ShardVerificationError, open_split
from tokenization.tokenizer import (EOT_TOKEN, eot_id, load_tokenizer_file, token_bytes, train_bpe,
                                    vocab_size)

WORDS = ("the river's mouth, 1234567 people; Zürich naïve 東京タワー emoji😀 can't won't "
         "it'll (quoted) --dash-- 3.14159 x=y+z!!! tab\there").split(" ")


def _prose(n_words: int, seed: int = 0) -> str:
    """Words joined by every kind of gap the pre-tokenizers treat specially: single and multiple
    spaces, newlines after punctuation, CRLF, tabs, trailing spaces before newlines."""
    rng = np.random.default_rng(seed)
    gaps = [" "] * 12 + ["  ", "   ", "\n", "\n\n", ".\n", " \n", "\r\n", "\t", " \t "]
    out = []
    for i in range(n_words):
        out.append(WORDS[int(rng.integers(len(WORDS)))])
        out.append(gaps[int(rng.integers(len(gaps)))])
    return "".join(out)


@pytest.fixture(scope="module")
def tok():
    return train_bpe([_prose(3000, s) for s in range(4)], 600)


def _tiktoken(tok, tmp_path, pattern):
    path = tmp_path / f"ranks-{pattern}.tiktoken"
    import base64

    eot = eot_id(tok)
    lines = [f"{base64.b64encode(token_bytes(tok, i)).decode()} {i}" for i in range(vocab_size(tok)) if i != eot]
    path.write_text("\n".join(lines) + "\n")
    return load_tokenizer_file(path, pattern=pattern, eot=eot)


# ---- item 11: encoding in pieces ---------------------------------------------------------------
def test_pieces_cover_the_text_and_respect_the_size():
    text = _prose(2000, 7)
    for max_chars in (2, 5, 37, 400):
        pieces = list(text_pieces(text, max_chars))
        assert "".join(pieces) == text
        assert all(0 < len(p) <= max_chars for p in pieces)
    assert list(text_pieces("short", 100)) == ["short"]


@pytest.mark.parametrize("kind", ["trained", "gpt2", "cl100k_base"])
def test_encoding_in_pieces_equals_whole_text_encoding(tok, tmp_path, kind):
    tokenizer = tok if kind == "trained" else _tiktoken(tok, tmp_path, kind)
    eot = eot_id(tokenizer)
    texts = [_prose(1500, s) for s in range(3)] + ["a", "two words", "x" * 10]
    whole = [tokenizer.encode(t, add_special_tokens=False).ids + [eot] for t in texts]
    for max_chars in (200, 257, 10_000):
        assert sum(_hard_cuts(t, max_chars) for t in texts) == 0  # every cut at a space: exact
        got = list(encode_documents(tokenizer, texts, eot=eot, dtype=np.uint16, max_chars=max_chars))
        assert [g.tolist() for g in got] == whole, max_chars


def _hard_cuts(text: str, max_chars: int) -> int:
    """Cuts not made before a single space between two non-space characters."""
    pos, hard = 0, 0
    for piece in list(text_pieces(text, max_chars))[:-1]:
        pos += len(piece)
        hard += not (text[pos] == " " and not text[pos - 1].isspace() and not text[pos + 1].isspace())
    return hard


def test_text_without_spaces_is_cut_hard_and_still_decodes_exactly(tok):
    text = "東京" * 500 + "abcdefghij" * 100  # no space to cut at
    pieces = list(text_pieces(text, 64))
    assert len(pieces) > 10 and all(len(p) <= 64 for p in pieces) and _hard_cuts(text, 64) == len(pieces) - 1
    ids = next(encode_documents(tok, [text], eot=eot_id(tok), dtype=np.uint16, max_chars=64))
    assert tok.decode(ids[:-1].tolist(), skip_special_tokens=False) == text


class _Recording:
    """A tokenizer proxy that records the size of every text handed to the tokenizer."""

    def __init__(self, tok):
        self.tok, self.sizes = tok, []

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def encode_batch_fast(self, texts, **kw):
        self.sizes.append(sum(len(t) for t in texts))
        return self.tok.encode_batch_fast(texts, **kw)


def test_encode_fn_never_hands_the_tokenizer_more_than_the_chunk(tok):
    from pipelines.tokenize import EncodeFn

    big = _prose(20000, 3)  # ~150k characters
    small = [_prose(30, s) for s in range(20)]
    fn = EncodeFn(tok.to_str(), vocab_size(tok), False, 5000)
    fn.setup()
    fn.tok = _Recording(fn.tok)
    batch = [("train", bytes([i]) * 32, f"d{i}", t) for i, t in enumerate(small[:10] + [big] + small[10:])]
    out = list(fn.process(batch))
    assert max(fn.tok.sizes) <= 5000 and len(fn.tok.sizes) > 30
    eot = eot_id(tok)
    for (_, _, doc_id, text), (_, _, got_id, data, nbytes) in zip(batch, out):
        assert got_id == doc_id and nbytes == len(text.encode("utf-8"))
        ids = np.frombuffer(data, dtype="<u2").tolist()
        assert ids == tok.encode(text, add_special_tokens=False).ids + [eot]


def test_stage_dead_letters_documents_over_the_cap(tok, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    texts = [_prose(40, s) for s in range(12)]
    long_ok = _prose(400, 99)[:1900]  # under the cap, over the chunk: encoded in pieces
    huge = _prose(600, 5)[:3000]
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(14)], "text": texts + [long_ok, huge]}),
                   inp / "docs.parquet")
    tok_path = tmp_path / "tokenizer.json"
    tok_path.write_text(tok.to_str())
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("tokenize:\n  max_document_chars: 2000\n  encode_chunk_chars: 300\n")
    out = tmp_path / "shards"
    assert cli_main(["tokenize", "--config", str(cfg), "--input", str(inp), "--tokenizer", str(tok_path),
                     "--output", str(out), "--val-fraction", "0"]) == 0
    manifest = load_manifest(out)
    assert manifest["input"]["rejected"] == {"document_too_large": 1}
    rows = [json.loads(ln) for f in (out / "dead-letter").glob("*.jsonl") for ln in f.read_text().splitlines()]
    assert [(r["doc_id"], r["row"], r["reason"]) for r in rows] == [("d13", 13, "document_too_large")]
    assert "3000 characters" in rows[0]["detail"]
    decoded = sorted(tok.decode(ds[i][:-1].tolist(), skip_special_tokens=False)
                     for ds in open_split(out, "train") for i in range(len(ds)))
    assert decoded == sorted(texts + [long_ok])
    # item 12: each shard records its largest token id, and it is the true one
    for shard in manifest["shards"]:
        ds = IndexedDataset(out / shard["file"])
        assert shard["max_token_id"] == int(np.asarray(ds.tokens).max())
    assert tok_main(["verify", str(out)]) == 0


@pytest.mark.parametrize("value", ["0", "-5", "'big'"])
def test_bad_caps_are_refused_before_any_work(tmp_path, capsys, value):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"tokenize:\n  max_document_chars: {value}\n")
    (tmp_path / "tok.json").write_text("{}")
    rc = cli_main(["tokenize", "--config", str(cfg), "--input", str(tmp_path), "--tokenizer",
                   str(tmp_path / "tok.json"), "--output", str(tmp_path / "out")])
    assert rc == 2
    assert "max_document_chars" in capsys.readouterr().err


def test_tokenizer_training_sees_long_documents_in_pieces(tok, monkeypatch):
    from tokenization import tokenizer as tokmod

    monkeypatch.setattr(tokmod, "DEFAULT_MAX_CHARS", 500)
    seen = []
    texts = [_prose(2000, 1), _prose(50, 2)]
    got = tokmod.train_bpe((seen.append(t) or t for t in texts), 400)
    monkeypatch.setattr(tokmod, "DEFAULT_MAX_CHARS", 10 ** 9)
    whole = tokmod.train_bpe(texts, 400)
    assert got.to_str() == whole.to_str()  # cuts at spaces: the same pair counts, the same merges


# ---- item 12: token ids outside the vocabulary --------------------------------------------------
def make_shards(root: Path, tok, docs_by_split: dict, *, vocab: int | None = None,
                record_max: bool = True, max_override: int | None = None) -> Path:
    """A shards directory written through tokenization/ with a manifest whose vocabulary is
    ``vocab`` (default: the tokenizer's); ``record_max=False`` makes an old-style manifest."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.json").write_text(tok.to_str())
    V = vocab or vocab_size(tok)
    shards = []
    for split, docs in docs_by_split.items():
        name = f"{split}-00000"
        info = write_indexed(str(root / name), [np.asarray(d, dtype=np.int64) for d in docs], 60000)
        entry = {"file": name, "split": split, **{k: info[k] for k in ("tokens", "documents", "sha256_bin",
                                                                        "sha256_idx")}}
        if record_max:
            entry["max_token_id"] = info["max_token_id"] if max_override is None else max_override
        shards.append(entry)
    manifest = build_manifest(
        tokenizer={"file": "tokenizer.json", "sha256": sha256_file(root / "tokenizer.json"), "vocab_size": V,
                   "eot_token": EOT_TOKEN, "eot_id": eot_id(tok)},
        dtype="uint16", shards=shards, config={})
    (root / "manifest.json").write_bytes(manifest_json(manifest))
    return root


def test_writer_records_the_largest_id(tmp_path):
    info = write_indexed(str(tmp_path / "a"), [[1, 2, 3], [7, 0]], 100)
    assert info["max_token_id"] == 7
    info = write_indexed(str(tmp_path / "b"), [np.asarray([9, 4], "<u2").tobytes()], 100)
    assert info["max_token_id"] == 9
    assert write_indexed(str(tmp_path / "c"), [], 100)["max_token_id"] is None


@pytest.mark.parametrize("record_max", [True, False], ids=["manifest-records-max", "old-manifest"])
def test_verify_refuses_ids_outside_the_vocabulary(tok, tmp_path, capsys, record_max):
    V = vocab_size(tok)
    good = make_shards(tmp_path / "good", tok, {"train": [[1, 2, V - 1]], "val": [[3]]}, record_max=record_max)
    assert tok_main(["verify", str(good)]) == 0
    assert len(open_split(good, "train")) == 1  # old manifests (no max_token_id) still load
    bad = make_shards(tmp_path / "bad", tok, {"train": [[1, 2, 3]], "val": [[4, V + 3]]}, record_max=record_max)
    capsys.readouterr()
    assert tok_main(["verify", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(bad / "val-00000.bin") in err and f"token id {V + 3}" in err
    with pytest.raises(ShardVerificationError, match="val-00000.bin"):
        open_split(bad, "val", verify=True)


def test_verify_catches_a_manifest_that_understates_the_largest_id(tok, tmp_path, capsys):
    d = make_shards(tmp_path / "s", tok, {"train": [[1, 2, 300]], "val": [[3]]}, max_override=5)
    assert tok_main(["verify", str(d)]) == 2
    err = capsys.readouterr().err
    assert "train-00000.bin" in err and "300" in err
