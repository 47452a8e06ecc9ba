"""Document ids: unique per record (even when WARC-Record-IDs repeat), stable, one policy per stage."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines import dedup, refine
from pipelines.cli import main
from pipelines.schema import record_doc_id, row_doc_id, warc_basename
from pipelines.tokenize import ReadDocsFn
from tokenization.tokenizer import document_id, iter_parquet_docs

DUP_ID = "<urn:uuid:00000000-0000-0000-0000-000000000001>"


def article(topic: str) -> bytes:
    para = (f"This article is about {topic}. It explains the history of {topic}, why people care "
            f"about {topic}, and what has changed in recent years for everyone involved. ")
    return (f"<html><head><title>{topic}</title></head><body><article><h1>{topic}</h1>"
            + "".join(f"<p>{para} Paragraph {i}.</p>" for i in range(6))
            + "</article></body></html>").encode("utf-8")


def test_record_doc_id_is_unique_per_record_and_the_same_from_every_source():
    a = record_doc_id(DUP_ID, "crawl/seg/f.warc.gz", 1000)
    assert a != record_doc_id(DUP_ID, "crawl/seg/f.warc.gz", 2000)       # same id, other record
    assert a != record_doc_id(DUP_ID, "crawl/seg/g.warc.gz", 1000)       # same id, other file
    assert a != record_doc_id("<urn:uuid:other>", "crawl/seg/f.warc.gz", 1000)
    for where in ("s3://commoncrawl/crawl/seg/f.warc.gz", "https://data.example.org/crawl/seg/f.warc.gz?x=1",
                  "gs://bucket/mirror/f.warc.gz", "/data/f.warc.gz", "f.warc.gz"):
        assert warc_basename(where) == "f.warc.gz"
        assert record_doc_id(DUP_ID, where, 1000) == a
    # pinned: a change of policy changes every doc_id in the corpus, so it must be deliberate
    assert a == hashlib.sha256(f"{DUP_ID}\x00f.warc.gz\x001000".encode()).hexdigest()[:16]
    assert record_doc_id(None, "f.warc.gz", 7) != record_doc_id(None, "f.warc.gz", 8)


def test_the_fallback_id_for_rows_without_doc_id_is_the_same_in_every_stage(tmp_path):
    url, text = "https://example.org/a", "line one\nline two"
    expected = row_doc_id(None, url, text)
    assert expected == hashlib.sha256(f"{url}\x00{text}".encode()).hexdigest()[:16]
    assert row_doc_id("", url, text) == expected and row_doc_id("given", url, text) == "given"
    path = tmp_path / "no-ids.parquet"
    pq.write_table(pa.table({"url": [url], "text": [text]}), path)
    # refine
    rows = [r for kind, r in refine.read_parquet_rows(str(path)) if kind == "row"]
    assert [r["doc_id"] for r in rows] == [expected]
    # dedup (input without doc_id)
    assert [d["doc_id"] for d in dedup._prepare({"url": url, "text": text})] == [expected]
    # tokenize stage and tokenizer-training sample (tokenization/ mirrors the policy)
    assert [doc[2] for doc in ReadDocsFn(seed=1, val_fraction=0.0, max_chars=10**6).process(str(path))] == [expected]
    import pyarrow.fs as pafs
    assert [d for _, d, _ in iter_parquet_docs(pafs.LocalFileSystem(), str(path))] == [expected]
    assert document_id(None, url, text) == expected and document_id(None, None, text) == row_doc_id(None, None, text)


def _warc_with_duplicate_ids(path: Path) -> Path:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for topic in ("gardening", "astronomy"):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                                       protocol="HTTP/1.1")
            rec = writer.create_warc_record(f"https://example.org/{topic}", "response",
                                            payload=io.BytesIO(article(topic)), http_headers=headers)
            rec.rec_headers.replace_header("WARC-Record-ID", DUP_ID)
            writer.write_record(rec)
    return path


def test_records_with_the_same_warc_record_id_both_survive_extract_with_distinct_stable_ids(tmp_path):
    warc = _warc_with_duplicate_ids(tmp_path / "dup-ids.warc.gz")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("extract:\n  compute_signals: false\n  min_text_chars: 50\n  timeout_s: 0\n")
    out = tmp_path / "out"
    assert main(["extract", "--input", str(warc), "--output", str(out), "--config", str(cfg)]) == 0
    rows = [r for f in sorted(out.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    rows.sort(key=lambda r: r["warc_offset"])
    assert [r["url"] for r in rows] == ["https://example.org/gardening", "https://example.org/astronomy"]
    assert {r["warc_record_id"] for r in rows} == {DUP_ID} and len({r["doc_id"] for r in rows}) == 2
    # deterministic: the ids are the pinned function of (record id, file name, offset), nothing else
    assert [r["doc_id"] for r in rows] == [record_doc_id(DUP_ID, "dup-ids.warc.gz", r["warc_offset"]) for r in rows]
