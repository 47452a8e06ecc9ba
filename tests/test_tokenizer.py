"""Tokenizer training, loading, tiktoken conversion and the train-tokenizer CLI."""
from __future__ import annotations

import base64
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import regex

from tests.conftest import require_shared
from tokenization.__main__ import main as tok_main
from tokenization.tokenizer import (EOT_TOKEN, TIKTOKEN_PATTERNS, TokenizerError, eot_id, load_tokenizer_file,
                                    sample_texts, token_bytes, train_bpe, train_from_parquet)

TRICKY = [
    "Hello, world!  Two  spaces, trailing space ",
    "\n\nleading newlines\tand\ttabs\r\nCRLF",
    "Zürich, Łódź, São Paulo — naïve café; 日本語のテキスト; эмодзи 😀👍🏽",
    "numbers 1234567890 3.14159 and symbols <>&%$#@!",
    "a document that mentions <|endoftext|> in its text",
    " ",
]


def _corpus():
    words = ("the quick brown fox jumps over the lazy dog while zebras quietly graze near "
             "Zürich and Łódź; numbers 12345 and 3.14 appear too").split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(20 + i % 13)) for i in range(200)]


@pytest.fixture(scope="module")
def tok():
    return train_bpe(_corpus() + TRICKY, 400)


def _write_docs(path, docs, with_ids=True):
    cols = {"url": [f"https://example.org/{i}" for i in range(len(docs))], "text": docs}
    if with_ids:
        cols["doc_id"] = [f"d{i:04d}" for i in range(len(docs))]
    pq.write_table(pa.table(cols), path)


def test_round_trip_exact(tok):
    for text in TRICKY + _corpus()[:20]:
        ids = tok.encode(text).ids
        assert tok.decode(ids, skip_special_tokens=False) == text


def test_eot_is_special_and_cannot_be_forged(tok):
    eot = eot_id(tok)
    assert tok.id_to_token(eot) == EOT_TOKEN
    ids = tok.encode("before <|endoftext|> after").ids
    assert eot not in ids  # the literal string in a document is plain text
    assert tok.decode(ids + [eot], skip_special_tokens=False) == "before <|endoftext|> after" + EOT_TOKEN


def test_training_is_deterministic_and_sized(tok):
    again = train_bpe(_corpus() + TRICKY, 400)
    assert again.to_str() == tok.to_str()
    # at most the requested size (training stops early when no pair is frequent enough)
    assert 257 < tok.get_vocab_size() <= 400
    big = train_bpe(_corpus() * 3 + TRICKY, 300)
    assert big.get_vocab_size() == 300
    # all 256 bytes are in the base alphabet, so no input is ever unknown
    every_char = bytes(range(256)).decode("latin-1") + "\U0010fffd"
    assert tok.decode(tok.encode(every_char).ids) == every_char


def test_vocab_too_small():
    with pytest.raises(ValueError, match="at least 257"):
        train_bpe(["x"], 100)


def test_sample_is_smallest_seeded_hashes(tmp_path):
    docs = [f"document number {i} " * 3 for i in range(50)]
    _write_docs(tmp_path / "a.parquet", docs[:30])
    _write_docs(tmp_path / "b.parquet", docs[30:], with_ids=False)
    ids = [f"d{i:04d}" for i in range(30)]
    # doc ids derived from url + text when the column is absent
    ids += [hashlib.sha256(f"https://example.org/{i}\x00{docs[30 + i]}".encode()).hexdigest()[:16]
            for i in range(20)]
    key = {d: hashlib.sha256(f"7\x00{i}".encode()).digest() for i, d in zip(ids, docs)}
    expected = set(sorted(docs, key=key.__getitem__)[:10])
    got = list(sample_texts(str(tmp_path), 10, seed=7))
    assert len(got) == 10 and set(got) == expected
    assert set(sample_texts(str(tmp_path), 10, seed=8)) != expected
    assert sorted(sample_texts(str(tmp_path), None, seed=7)) == sorted(docs)


def test_train_from_parquet_reproducible(tmp_path):
    _write_docs(tmp_path / "a.parquet", _corpus())
    a = train_from_parquet(str(tmp_path), 300, sample_docs=100, seed=1)
    b = train_from_parquet(str(tmp_path), 300, sample_docs=100, seed=1)
    assert a.to_str() == b.to_str()


# --- tiktoken-format files ------------------------------------------------------------------------

def _tiktoken_file(tok, path):
    """Write ``tok``'s BPE as a tiktoken file: base64(token bytes) and rank = token id."""
    eot = eot_id(tok)
    ranks = {token_bytes(tok, i): i for i in range(tok.get_vocab_size()) if i != eot}
    path.write_text("".join(f"{base64.b64encode(b).decode()} {r}\n" for b, r in
                            sorted(ranks.items(), key=lambda kv: kv[1])))
    return ranks


def reference_bpe(ranks, text, pattern=TIKTOKEN_PATTERNS["gpt2"]):
    """tiktoken's algorithm from its description: per regex piece, join the adjacent pair whose
    concatenation has the lowest rank (leftmost on ties) until none is in the vocabulary."""
    out = []
    for piece in regex.findall(pattern, text):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        out.extend(ranks[p] for p in parts)
    return out


def _texts():
    texts = TRICKY + _corpus()[:30]
    try:
        texts.append(require_shared("text/tinyshakespeare.txt").read_text()[:20000])
    except pytest.skip.Exception:
        pass
    return texts


def test_tiktoken_file_encodes_like_its_ranks(tok, tmp_path):
    path = tmp_path / "bpe.tiktoken"
    ranks = _tiktoken_file(tok, path)
    loaded = load_tokenizer_file(path, eot=eot_id(tok))
    assert loaded.token_to_id(EOT_TOKEN) == eot_id(tok)
    for text in _texts():
        ids = loaded.encode(text).ids
        assert ids == reference_bpe(ranks, text)
        assert loaded.decode(ids, skip_special_tokens=False) == text


def test_tiktoken_matches_tiktoken_library(tok, tmp_path):
    tiktoken = pytest.importorskip("tiktoken")
    path = tmp_path / "bpe.tiktoken"
    ranks = _tiktoken_file(tok, path)
    for pattern in ("gpt2", "cl100k_base"):
        ref = tiktoken.Encoding("t", pat_str=TIKTOKEN_PATTERNS[pattern], mergeable_ranks=ranks,
                                special_tokens={})
        loaded = load_tokenizer_file(path, pattern=pattern, eot=eot_id(tok))
        for text in _texts():
            assert loaded.encode(text).ids == ref.encode_ordinary(text), pattern


def test_tiktoken_default_eot_after_last_rank(tok, tmp_path):
    path = tmp_path / "bpe.tiktoken"
    ranks = _tiktoken_file(tok, path)
    loaded = load_tokenizer_file(path)
    assert eot_id(loaded) == max(ranks.values()) + 1
    # ids of the ranks are untouched; the unused rank 0 (the original eot) is a placeholder
    assert loaded.token_to_id(tok.id_to_token(5)) == 5


@pytest.mark.parametrize("content, message", [
    ("!!notbase64 0\n", "bpe.tiktoken:1"),
    ("QQ== 0 extra\n", "bpe.tiktoken:1"),
    ("QQ== 0\nQg== 1\n", "single bytes have no rank"),
])
def test_bad_tiktoken_file(tmp_path, content, message):
    path = tmp_path / "bpe.tiktoken"
    path.write_text(content)
    with pytest.raises(TokenizerError, match=message):
        load_tokenizer_file(path)


def test_bad_tokenizer_json(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"not": "a tokenizer"}')
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        load_tokenizer_file(path)
    with pytest.raises(FileNotFoundError):
        load_tokenizer_file(tmp_path / "missing.json")


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_trains_and_writes(tmp_path, capsys):
    _write_docs(tmp_path / "a.parquet", _corpus())
    out = tmp_path / "tok" / "tokenizer.json"
    assert tok_main(["train-tokenizer", "--input", str(tmp_path), "--vocab-size", "300",
                     "--out", str(out), "--sample-docs", "50", "--seed", "3"]) == 0
    loaded = load_tokenizer_file(out)
    assert loaded.get_vocab_size() == 300
    assert "50 documents" in capsys.readouterr().out
    text = _corpus()[0]
    assert loaded.decode(loaded.encode(text).ids) == text


@pytest.mark.parametrize("argv, flag", [
    (["--vocab-size", "100"], "--vocab-size"),
    (["--sample-docs", "0"], "--sample-docs"),
    (["--input", "MISSING"], "--input"),
])
def test_cli_errors_name_the_argument(tmp_path, capsys, argv, flag):
    _write_docs(tmp_path / "a.parquet", _corpus()[:5])
    base = {"--input": str(tmp_path), "--vocab-size": "300", "--out": str(tmp_path / "t.json")}
    for k, v in zip(argv[::2], argv[1::2]):
        base[k] = str(tmp_path / v) if v == "MISSING" else v
    args = ["train-tokenizer"] + [x for kv in base.items() for x in kv]
    assert tok_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and flag in err
    assert not (tmp_path / "t.json").exists()


def test_cli_convert_tiktoken(tok, tmp_path):
    src = tmp_path / "bpe.tiktoken"
    _tiktoken_file(tok, src)
    out = tmp_path / "converted.json"
    assert tok_main(["convert", "--tokenizer", str(src), "--out", str(out), "--eot-id", str(eot_id(tok))]) == 0
    converted = load_tokenizer_file(out)
    text = TRICKY[2]
    assert converted.encode(text).ids == load_tokenizer_file(src, eot=eot_id(tok)).encode(text).ids


def test_training_input_is_the_top_level_parquet_only(tmp_path):
    """refine writes removed documents to DIR/removed/: a tokenizer must not learn from them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tokenization.tokenizer import list_parquet

    (tmp_path / "removed").mkdir()
    pq.write_table(pa.table({"text": ["kept"]}), tmp_path / "part-00000.parquet")
    pq.write_table(pa.table({"text": ["spam"]}), tmp_path / "removed" / "part-00000.parquet")
    _, files = list_parquet(str(tmp_path))
    assert files == [str(tmp_path / "part-00000.parquet")]
