"""Decompression bombs in HTTP bodies end as ``decoded_too_large`` dead letters in bounded memory.

Each bomb is built here, streaming, from zeros: a small compressed body (well under
max_payload_bytes) that inflates to tens of MB.  The reader decodes with a cap
(``extract.max_decoded_bytes``) and stops at it; the record after the bomb is still read.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.config import load_config
from pipelines.http_body import BodyDecodeError, decode_body, dechunk
from pipelines.records import DEAD, header_outcome
from pipelines.warc import RawRecord, iter_records, local_opener

REPO = Path(__file__).resolve().parent.parent
MB = 1 << 20
PAGE = b"<html><body><p>" + b"A normal page. " * 40 + b"</p></body></html>"


def bomb(encoding: str, inflated: int) -> bytes:
    """``inflated`` zero bytes compressed with ``encoding``, built a MiB at a time."""
    block = b"\0" * MB
    if encoding == "br":
        comp = brotli.Compressor(quality=5)
        out = [comp.process(block) for _ in range(inflated // MB)]
        return b"".join(out) + comp.finish()
    if encoding == "zstd":
        comp = zstandard.ZstdCompressor(level=3).compressobj()
        out = [comp.compress(block) for _ in range(inflated // MB)]
        return b"".join(out) + comp.flush()
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    out = [comp.compress(block) for _ in range(inflated // MB)]
    return b"".join(out) + comp.flush()


def compress(encoding: str, data: bytes) -> bytes:
    if encoding == "br":
        return brotli.compress(data)
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    comp = zlib.compressobj(9, zlib.DEFLATED, {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding])
    return comp.compress(data) + comp.flush()


def header(encoding: str) -> str:
    return "deflate" if encoding == "raw-deflate" else encoding


def write_warc(path: Path, bodies: list[tuple[str, bytes, list[tuple[str, str]]]]) -> Path:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=path.suffix == ".gz")
        for name, body, extra in bodies:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), *extra], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://example.org/{name}", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))
    return path


def responses(path: Path, cap: int) -> list[RawRecord]:
    items = list(iter_records(local_opener(str(path)), str(path), want_body=lambda r: True,
                              max_body_bytes=5_000_000, max_decoded_bytes=cap))
    return [r for r in items if isinstance(r, RawRecord) and r.rec_type == "response"]


ENCODINGS = ["gzip", "deflate", "raw-deflate", "br", "zstd"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_bomb_is_dead_lettered_decoded_too_large_and_the_next_record_is_read(tmp_path, encoding):
    body = bomb(encoding, 50 * MB)
    assert len(body) < 200_000  # a small payload, far under max_payload_bytes
    path = write_warc(tmp_path / "bomb.warc.gz", [
        ("bomb", body, [("Content-Encoding", header(encoding))]),
        ("good", compress(encoding, PAGE), [("Content-Encoding", header(encoding))]),
    ])
    bombed, good = responses(path, cap=1 * MB)
    assert bombed.body is None and bombed.decode_reason == "decoded_too_large"
    assert "more than 1048576" in bombed.decode_error
    assert good.body == PAGE and good.decode_error is None
    cfg = load_config()["extract"]
    outcome = header_outcome(bombed, cfg)
    assert outcome.status == DEAD and outcome.reason == "decoded_too_large"
    assert outcome.dead["reason"] == "decoded_too_large" and outcome.dead["url"] == "https://example.org/bomb"
    assert header_outcome(good, cfg) is None  # goes on to extraction


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_body_just_under_the_cap_is_kept_and_one_just_over_is_not(encoding):
    data = PAGE * 100
    encoded = compress(encoding, data)
    headers = [("Content-Encoding", header(encoding))]
    assert decode_body(encoded, headers, len(data)) == data
    with pytest.raises(BodyDecodeError) as err:
        decode_body(encoded, headers, len(data) - 1)
    assert err.value.reason == "decoded_too_large"


def test_corrupt_truncated_and_unknown_encodings_stay_bad_content_encoding():
    page = compress("gzip", PAGE)
    for raw, enc in ((page[:-12], "gzip"), (compress("br", PAGE)[:-3], "br"),
                     (compress("zstd", PAGE)[:-3], "zstd"), (b"\x78\x9c garbage", "deflate"),
                     (PAGE, "compress"), (PAGE, "gzip, br")):
        with pytest.raises(BodyDecodeError) as err:
            decode_body(raw, [("Content-Encoding", enc)], 10 * MB)
        assert err.value.reason == "bad_content_encoding", enc
    # a "gzip" body that is not gzip at all is taken as-is (crawlers that stored it decoded)
    assert decode_body(PAGE, [("Content-Encoding", "gzip")], 10 * MB) == PAGE


def test_chunked_bodies_are_dechunked_strictly_and_cannot_grow():
    assert dechunk(b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n") == b"hello!"
    for bad in (b"5\r\nhel", b"ffffffffffff\r\nabc\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n",
                b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n", b"9" * 100 + b"\r\n"):
        with pytest.raises(ValueError):
            dechunk(bad)
    # 1-byte chunks: the largest framing overhead; the output is never larger than the input
    raw = b"".join(b"1\r\n" + bytes([65 + i % 26]) + b"\r\n" for i in range(10_000)) + b"0\r\n\r\n"
    assert len(dechunk(raw)) == 10_000 < len(raw)
    # chunked + gzip bomb: the cap applies after dechunking
    gz = bomb("gzip", 20 * MB)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(gz[i:i + 4096]), gz[i:i + 4096]) for i in range(0, len(gz), 4096))
    headers = [("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")]
    with pytest.raises(BodyDecodeError) as err:
        decode_body(chunked + b"0\r\n\r\n", headers, 1 * MB)
    assert err.value.reason == "decoded_too_large"


_CHILD = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    from pipelines.records import header_outcome
    from pipelines.warc import RawRecord, iter_records, local_opener
    path, cap = sys.argv[2], int(sys.argv[3])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reasons = [r.decode_reason for r in iter_records(local_opener(path), path, want_body=lambda r: True,
                                                      max_decoded_bytes=cap)
               if isinstance(r, RawRecord) and r.rec_type == "response"]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "reasons": reasons}))
""")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_decoding_a_bomb_costs_the_cap_not_the_inflated_size(tmp_path, encoding):
    """Peak RSS of a child process that reads a 100 MB bomb with a 2 MB cap grows by far less than
    100 MB (the code before the cap held the whole inflated body, several times over)."""
    inflated = 100 * MB
    path = write_warc(tmp_path / "bomb.warc.gz", [("bomb", bomb(encoding, inflated),
                                                   [("Content-Encoding", encoding)])])
    out = subprocess.run([sys.executable, "-c", _CHILD, str(REPO), str(path), str(2 * MB)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["reasons"] == ["decoded_too_large"]
    assert result["growth_kib"] * 1024 < inflated / 8, result


def test_an_extract_run_dead_letters_the_bomb_and_keeps_the_page_after_it(tmp_path):
    from pipelines.cli import main

    text = ("A page after the bomb, long enough to be kept as a document by the extractor. " * 8).encode()
    good = b"<html><head><title>after</title></head><body><article><p>" + text + b"</p></article></body></html>"
    warc = write_warc(tmp_path / "bomb.warc.gz", [
        ("bomb", bomb("gzip", 50 * MB), [("Content-Encoding", "gzip")]),
        ("after", compress("gzip", good), [("Content-Encoding", "gzip")]),
    ])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("extract:\n  compute_signals: false\n  min_text_chars: 50\n  timeout_s: 0\n"
                   "  max_decoded_bytes: 1000000\n")
    out = tmp_path / "out"
    assert main(["extract", "--input", str(warc), "--output", str(out), "--config", str(cfg)]) == 0
    dead = [json.loads(line) for f in sorted((out / "dead-letter").glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    assert [(d["reason"], d["url"]) for d in dead] == [("decoded_too_large", "https://example.org/bomb")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dead_lettered_by_reason"] == {"decoded_too_large": 1}
    import pyarrow.parquet as pq
    rows = [r for f in sorted(out.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [r["url"] for r in rows] == ["https://example.org/after"]
