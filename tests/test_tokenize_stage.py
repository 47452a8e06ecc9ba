"""The tokenize Beam stage end to end on the local runner (1 and 2 workers)."""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main as cli_main
from tests.test_shards import parse_idx
from tokenization.shards import load_tokenizer, open_split
from tokenization.tokenizer import EOT_TOKEN, eot_id, token_bytes, train_bpe

SEED = 11
VAL_FRACTION = 0.2
SHARD_TOKENS = 1500


def _texts(n, salt):
    words = ("alpha beta gamma delta Zürich naïve 東京 emoji😀 numbers 42 3.14 the and of to in "
             "river mountain city music history science").split()
    out = []
    for i in range(n):
        k = 5 + (i * 13 + salt) % 40
        out.append(" ".join(words[(i * 3 + j * (salt + 1)) % len(words)] for j in range(k))
                   + ("\n\n" if i % 4 == 0 else "") + f" #{salt}-{i}")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenize")
    inp = root / "in"
    inp.mkdir()
    a = _texts(45, 1)
    a[3] = "a document quoting <|endoftext|> literally, which must stay text"
    a[7] = a[8]  # same text, different doc_id: two documents
    a_ids = [f"a{i:03d}" for i in range(45)]
    a_rows = list(a) + [None, ""]  # a null and an empty text: dead-lettered
    pq.write_table(pa.table({"doc_id": a_ids + ["a-null", "a-empty"],
                             "url": [f"https://a.example/{i}" for i in range(47)], "text": a_rows}),
                   inp / "a.parquet")
    b = _texts(40, 2)
    b_urls = [f"https://b.example/{i}" for i in range(40)]
    pq.write_table(pa.table({"url": b_urls, "text": b}), inp / "b.parquet")
    pq.write_table(pa.table({"url": ["https://c.example/"], "body": ["no text column"]}), inp / "c.parquet")
    (inp / "d.parquet").write_bytes(b"PAR1 this is not really parquet")

    docs = [(i, t) for i, t in zip(a_ids, a)]
    docs += [(hashlib.sha256(f"{u}\x00{t}".encode()).hexdigest()[:16], t) for u, t in zip(b_urls, b)]
    tok = train_bpe(a + b, 500)
    tok_path = root / "tokenizer.json"
    tok_path.write_text(tok.to_str())
    return {"root": root, "input": inp, "docs": docs, "tokenizer": tok_path, "tok": tok}


def _run(corpus, out, workers, *extra, tokenizer=None):
    argv = ["tokenize", "--input", str(corpus["input"]), "--tokenizer", str(tokenizer or corpus["tokenizer"]),
            "--output", str(out), "--val-fraction", str(VAL_FRACTION), "--shard-tokens", str(SHARD_TOKENS),
            "--seed", str(SEED), f"--direct_num_workers={workers}", *extra]
    assert cli_main(argv) == 0


@pytest.fixture(scope="module")
def run1(corpus):
    out = corpus["root"] / "out1"
    _run(corpus, out, 1)
    return out


@pytest.fixture(scope="module")
def run2(corpus):
    out = corpus["root"] / "out2"
    _run(corpus, out, 2)
    return out


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _expected_order(docs, manifest):
    """The documented placement: h = sha256(seed \\0 doc_id); split from h[8:16]; bucket from
    h[16:24] mod the split's bucket count; buckets in order, each sorted by h."""
    by_split = {"train": [], "val": []}
    for doc_id, text in docs:
        h = hashlib.sha256(f"{SEED}\x00{doc_id}".encode()).digest()
        split = "val" if int.from_bytes(h[8:16], "big") < VAL_FRACTION * 2 ** 64 else "train"
        bucket = int.from_bytes(h[16:24], "big") % manifest["plan"][split]["buckets"]
        by_split[split].append(((bucket, h, doc_id), text))
    return {s: [t for _, t in sorted(v)] for s, v in by_split.items()}


def test_round_trip_in_shuffled_order(corpus, run1):
    manifest = json.loads((run1 / "manifest.json").read_text())
    tok = load_tokenizer(run1)
    eot = eot_id(tok)
    expected = _expected_order(corpus["docs"], manifest)
    assert expected["val"] and expected["train"]
    for split in ("train", "val"):
        datasets = open_split(run1, split)
        docs = [ds[i] for ds in datasets for i in range(len(ds))]
        assert len(docs) == len(expected[split])
        for tokens, text in zip(docs, expected[split]):
            assert tokens[-1] == eot and eot not in tokens[:-1].tolist()
            assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == text
        stream = [t for ds in datasets for t in ds.tokens.tolist()]
        assert tok.decode(stream, skip_special_tokens=False) == "".join(t + EOT_TOKEN for t in expected[split])
    # the shuffle really moved documents away from input order
    assert expected["train"] != [t for _, t in corpus["docs"] if t in set(expected["train"])]


def test_splits_are_disjoint_and_complete(corpus, run1):
    tok = load_tokenizer(run1)
    seen = {}
    for split in ("train", "val"):
        texts = [tok.decode(ds[i][:-1].tolist()) for ds in open_split(run1, split) for i in range(len(ds))]
        seen[split] = texts
    # the two copies of a[8] have different doc ids; every other text is unique
    assert sorted(seen["train"] + seen["val"]) == sorted(t for _, t in corpus["docs"])
    dup = corpus["docs"][8][1]
    only_once = [t for t in set(seen["train"]) & set(seen["val"]) if t != dup]
    assert only_once == []


def test_manifest_describes_shards(corpus, run1):
    manifest = json.loads((run1 / "manifest.json").read_text())
    tok = corpus["tok"]
    assert manifest["tokenizer"]["vocab_size"] == tok.get_vocab_size()
    assert manifest["tokenizer"]["eot_id"] == eot_id(tok)
    assert manifest["tokenizer"]["sha256"] == hashlib.sha256((run1 / "tokenizer.json").read_bytes()).hexdigest()
    assert manifest["format"]["dtype"] == "uint16"
    assert manifest["config"]["seed"] == SEED and manifest["config"]["val_fraction"] == VAL_FRACTION
    train = [s for s in manifest["shards"] if s["split"] == "train"]
    assert len(train) > 1, "small --shard-tokens should give several shards"
    total = manifest["splits"]["train"]["tokens"]
    assert manifest["plan"]["train"]["buckets"] == math.ceil(total / SHARD_TOKENS)
    assert [s["file"] for s in train] == [f"train-{i:05d}" for i in range(len(train))]
    for shard in manifest["shards"]:
        prefix = run1 / shard["file"]
        idx = parse_idx(f"{prefix}.idx")
        assert idx["code"] == 8 and idx["version"] == 1
        assert len(idx["sizes"]) == shard["documents"] and sum(idx["sizes"]) == shard["tokens"]
        assert idx["doc_idx"] == list(range(shard["documents"] + 1))
        assert idx["pointers"] == [2 * sum(idx["sizes"][:i]) for i in range(len(idx["sizes"]))]
        assert os.path.getsize(f"{prefix}.bin") == 2 * shard["tokens"]
        assert hashlib.sha256(Path(f"{prefix}.bin").read_bytes()).hexdigest() == shard["sha256_bin"]
    assert not (run1 / "_staging").exists()
    assert not [p for p in run1.rglob(".*")], "temporary files left behind"


def test_bad_input_is_dead_lettered(run1):
    manifest = json.loads((run1 / "manifest.json").read_text())
    assert manifest["input"]["rejected"] == {"empty_text": 1, "missing_text_column": 1, "null_text": 1,
                                             "unreadable_parquet": 1}
    rows = [json.loads(line) for f in sorted((run1 / "dead-letter").glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    assert sorted((os.path.basename(r["file"]), r["reason"]) for r in rows) == [
        ("a.parquet", "empty_text"), ("a.parquet", "null_text"), ("c.parquet", "missing_text_column"),
        ("d.parquet", "unreadable_parquet")]
    summary = json.loads((run1 / "summary.json").read_text())
    assert summary["documents_read"] == 85


def test_one_and_two_workers_byte_identical(run1, run2):
    a, b = _files(run1), _files(run2)
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name] and name not in ("manifest.json", "summary.json")]
    assert different == []
    # manifest/summary differ only by the output path recorded in them
    strip = lambda d, out: d.replace(str(out).encode(), b"OUT")  # noqa: E731
    assert strip(a["manifest.json"], run1) == strip(b["manifest.json"], run2)


def test_existing_output_needs_overwrite(corpus, run1, capsys):
    argv = ["tokenize", "--input", str(corpus["input"]), "--tokenizer", str(corpus["tokenizer"]),
            "--output", str(run1)]
    assert cli_main(argv) == 2
    assert "--output" in capsys.readouterr().err


def test_overwrite_with_bigger_shards_removes_stale_files(corpus, run1, run2):
    before = _files(run2)
    _run(corpus, run2, 2, "--overwrite", "--shard-tokens", "1000000")
    manifest = json.loads((run2 / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == ["train-00000", "val-00000"]
    assert sorted(p.name for p in run2.glob("train-*")) == ["train-00000.bin", "train-00000.idx"]
    assert len(open_split(run2, "train")) == 1
    # same documents, same order within one bucket = sorted by hash
    assert manifest["splits"]["train"]["documents"] == json.loads(before["manifest.json"])["splits"]["train"]["documents"]


def test_tiktoken_file_as_tokenizer(corpus, run1):
    tok = corpus["tok"]
    path = corpus["root"] / "bpe.tiktoken"
    ranks = {token_bytes(tok, i): i for i in range(tok.get_vocab_size()) if i != eot_id(tok)}
    path.write_text("".join(f"{base64.b64encode(b).decode()} {r}\n" for b, r in ranks.items()))
    out = corpus["root"] / "out-tiktoken"
    _run(corpus, out, 2, tokenizer=path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["eot_id"] == max(ranks.values()) + 1
    loaded = load_tokenizer(out)
    expected = _expected_order(corpus["docs"], manifest)
    got = [loaded.decode(ds[i][:-1].tolist()) for ds in open_split(out, "val") for i in range(len(ds))]
    assert got == expected["val"]


@pytest.mark.parametrize("change, flag", [
    ({"--val-fraction": "1.5"}, "--val-fraction"),
    ({"--shard-tokens": "0"}, "--shard-tokens"),
    ({"--tokenizer": "MISSING"}, "--tokenizer"),
    ({"--tokenizer": "GARBAGE"}, "--tokenizer"),
    ({"--input": "EMPTY"}, "--input"),
])
def test_cli_errors_name_the_argument(corpus, tmp_path, capsys, change, flag):
    garbage = tmp_path / "garbage.bpe"
    garbage.write_text("this is not a tokenizer\n")
    (tmp_path / "empty").mkdir()
    subst = {"MISSING": str(tmp_path / "nope.json"), "GARBAGE": str(garbage), "EMPTY": str(tmp_path / "empty")}
    args = {"--input": str(corpus["input"]), "--tokenizer": str(corpus["tokenizer"]),
            "--output": str(tmp_path / "out")}
    args.update({k: subst.get(v, v) for k, v in change.items()})
    assert cli_main(["tokenize"] + [x for kv in args.items() for x in kv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and flag in err
    assert not (tmp_path / "out").exists()
