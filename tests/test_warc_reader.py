"""The streaming WARC reader: exact on real Common Crawl data, resilient on damaged files."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipelines.warc import RawRecord, ReadError, iter_records, local_opener, stream_opener
from tests.conftest import require_shared


def read_all(path: Path, want=lambda r: True):
    items = list(iter_records(local_opener(str(path)), str(path), want_body=want))
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, ReadError)]


def reference(path: Path):
    """(type, uri, record id, date) per record, read by warcio directly."""
    out = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, arc2warc=True):
            h = rec.rec_headers
            out.append((rec.rec_type, h.get_header("WARC-Target-URI"), h.get_header("WARC-Record-ID"),
                        h.get_header("WARC-Date")))
    return out


def test_common_crawl_extract_is_read_exactly():
    path = require_shared("warc/commoncrawl-whirlwind.warc.gz")
    records, errors = read_all(path)
    assert not errors
    assert [(r.rec_type, r.target_uri, r.record_id, r.date) for r in records] == reference(path)
    responses = [r for r in records if r.rec_type == "response"]
    assert responses, "the extract holds at least one response"
    # The crawler's WARC-Payload-Digest is the SHA-1 of the HTTP payload as stored: our body
    # must hash to it byte for byte.
    with open(path, "rb") as fh:
        digests = {rec.rec_headers.get_header("WARC-Record-ID"): rec.rec_headers.get_header("WARC-Payload-Digest")
                   for rec in ArchiveIterator(fh) if rec.rec_type == "response"}
    for rec in responses:
        algo, _, expected = digests[rec.record_id].partition(":")
        assert algo.lower() == "sha1"
        assert base64.b32encode(hashlib.sha1(rec.body).digest()).decode() == expected
        assert rec.http_status == 200
        assert rec.fetch_datetime().year == 2024
    # Offsets point at real gzip members: reading from an offset yields that record first.
    assert records[0].offset == 0
    for rec in records:
        with _at(path, rec.offset) as fh:
            assert next(ArchiveIterator(fh)).rec_headers.get_header("WARC-Record-ID") == rec.record_id


def _at(path: Path, offset: int):
    fh = open(path, "rb")
    fh.seek(offset)
    return fh


CLEAN = ["example.warc", "example.warc.gz", "example.arc", "example.arc.gz", "example-digest.warc",
         "example-iana.org-chunked.warc", "example-resource.warc.gz", "post-test.warc.gz",
         "example-wget-bad-target-uri.warc.gz", "example-space-in-target-uri.warc.gz",
         "example-space-in-url.arc", "bad.arc", "example-trunc.warc"]


@pytest.mark.parametrize("name", CLEAN)
def test_warcio_files_that_warcio_reads_give_the_same_records(name):
    path = require_shared(f"warc/warcio/{name}")
    records, errors = read_all(path)
    assert not errors
    if ".arc" in name:
        # warcio gives converted ARC records random ids; ours are stable (file name + offset).
        assert [(r.rec_type, r.target_uri, r.date) for r in records] == [x[:2] + x[3:] for x in reference(path)]
        assert [r.record_id for r in records] == [f"<urn:arc:{name}:{r.offset}>" for r in records]
        assert [r.record_id for r in read_all(path)[0]] == [r.record_id for r in records]
    else:
        assert [(r.rec_type, r.target_uri, r.record_id, r.date) for r in records] == reference(path)


@pytest.mark.parametrize("name", ["example-bad-non-chunked.warc.gz", "example-bad.warc.gz.bad"])
def test_whole_file_gzip_is_read_through_a_decompressor(name):
    """One gzip stream holding many records (warcio refuses it): every record still comes out."""
    path = require_shared(f"warc/warcio/{name}")
    records, errors = read_all(path)
    assert not errors
    with gzip.open(path, "rb") as fh:
        expected = [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"))
                    for r in ArchiveIterator(io.BytesIO(fh.read()))]
    assert [(r.rec_type, r.record_id) for r in records] == expected
    assert len(records) == 6


def test_wrong_chunks_dead_letters_the_damage_and_reads_on():
    path = require_shared("warc/warcio/example-wrong-chunks.warc.gz")
    records, errors = read_all(path)
    assert len(errors) == 1
    err = errors[0]
    assert err.reason == "malformed_record" and err.skipped_bytes and err.skipped_bytes > 0
    assert any(r.offset > err.offset for r in records), "records after the damage are still read"


def test_every_warcio_file_reads_without_raising():
    folder = require_shared("warc/warcio")
    for path in sorted(folder.iterdir()):
        records, errors = read_all(path)
        assert records or errors, path.name


def _members(path: Path) -> list[bytes]:
    """Split a per-record gzip WARC into its raw members (via warcio's offsets)."""
    data = path.read_bytes()
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        spans = []
        for rec in it:
            rec.content_stream().read()
            spans.append((it.get_record_offset(), it.get_record_length()))
    return [data[o:o + n] for o, n in spans]


def test_corrupt_member_in_the_middle_is_skipped_and_reported(tmp_path):
    members = _members(require_shared("warc/warcio/example.warc.gz"))
    assert len(members) >= 4
    broken = bytearray(members[2])
    broken[12:40] = b"\x00" * 28  # destroy the deflate stream, keep the gzip header
    data = b"".join(members[:2]) + bytes(broken) + b"".join(members[3:])
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(data)
    records, errors = read_all(path)
    assert len(errors) == 1
    bad_at = len(members[0]) + len(members[1])
    assert errors[0].offset == bad_at
    assert errors[0].skipped_bytes == len(members[2])
    assert len(records) == len(members) - 1
    assert records[-1].offset == len(data) - len(members[-1])


def test_truncated_file_keeps_the_records_before_the_cut(tmp_path):
    members = _members(require_shared("warc/warcio/example.warc.gz"))
    data = b"".join(members)
    cut = len(data) - len(members[-1]) // 2
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[:cut])
    records, errors = read_all(path)
    assert len(records) == len(members) - 1
    assert len(errors) == 1 and errors[0].offset == len(data) - len(members[-1])


def test_garbage_between_plain_records_is_skipped(tmp_path):
    plain = require_shared("warc/warcio/example.warc").read_bytes()
    cut = plain.index(b"WARC/1.0", 10)
    data = plain[:cut] + b"this is not a warc header\r\n\r\nnoise\r\n" + plain[cut:]
    path = tmp_path / "noisy.warc"
    path.write_bytes(data)
    garbage_end = cut + len(b"this is not a warc header\r\n\r\nnoise\r\n")
    records, errors = read_all(path)
    # warcio's lenient parser may take the first garbage line for an ARC-style header; the
    # error must still fall inside the garbage, and every real record must be read.
    assert len(errors) == 1 and cut <= errors[0].offset < garbage_end
    expected = [(t, rid) for t, _, rid, _ in reference(require_shared("warc/warcio/example.warc"))]
    ids = {rid for _, rid in expected}
    assert [(r.rec_type, r.record_id) for r in records if r.record_id in ids] == expected
    bogus = [r for r in records if r.record_id not in ids]
    assert len(bogus) <= 1 and all(r.http_status is None for r in bogus)  # dropped later, never a doc


def test_an_arc_looking_line_in_a_warc_gets_a_stable_id(tmp_path):
    # warcio parses a line with five space-separated fields as an ARC header and converts the
    # record with a random WARC-Record-ID; ids must not change from run to run.
    record = b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n"
    arc_line = b"http://example.com/ 1.2.3.4 20200101000000 text/html 5\nhello\n"
    path = tmp_path / "stray.warc"
    path.write_bytes(record + arc_line + record)
    runs = [read_all(path) for _ in range(2)]
    assert runs[0] == runs[1]
    records = runs[0][0]
    stray = [r for r in records if r.offset == len(record)]
    assert len(stray) == 1 and stray[0].record_id == f"<urn:arc:stray.warc:{len(record)}>"
    assert [r.record_id for r in records if r.offset != len(record)] == ["<urn:uuid:1>"] * 2


def test_sequential_stream_opener_matches_local_reads():
    path = require_shared("warc/commoncrawl-whirlwind.warc.gz")
    local = [(r.offset, r.record_id) for r in read_all(path)[0]]
    streamed = [(r.offset, r.record_id) for r in
                iter_records(stream_opener(lambda: io.BytesIO(path.read_bytes())), str(path))]
    assert streamed == local


def test_oversized_body_is_not_read():
    path = require_shared("warc/commoncrawl-whirlwind.warc.gz")
    items = list(iter_records(local_opener(str(path)), str(path), want_body=lambda r: True, max_body_bytes=1000))
    responses = [r for r in items if isinstance(r, RawRecord) and r.rec_type == "response"]
    assert responses and all(r.body is None and r.length > 1000 for r in responses)


def test_fake_gzip_headers_between_members_do_not_end_the_file(tmp_path):
    """False resync candidates (gzip magic followed by garbage) are skipped, not trusted."""
    members = _members(require_shared("robots/robotstxt.warc.gz"))
    k = len(members) // 2 + 5
    junk = b"\x1f\x8b\x08garbage-not-gzip" * 3
    path = tmp_path / "fake.warc.gz"
    path.write_bytes(b"".join(members[:k]) + junk + b"".join(members[k:]))
    records, errors = read_all(path)
    assert len(records) == len(members)
    assert len(errors) == 1 and errors[0].skipped_bytes == len(junk)
    assert errors[0].offset == sum(len(m) for m in members[:k])


def test_splits_partition_the_records_exactly():
    from pipelines.extract import chunk_of, split_of

    path = require_shared("realweb/realweb.warc.gz")
    everything = [(r.offset, r.record_id) for r in read_all(path)[0]]
    chunk_bytes = 1_000_000    # 29 chunks of realweb
    parts = []
    for k in range(3):
        parts.append([(r.offset, r.record_id) for r in iter_records(
            local_opener(str(path)), str(path), select=lambda off, k=k: split_of(off, 3, chunk_bytes) == k)])
    assert sorted(x for p in parts for x in p) == sorted(everything)
    assert all(len(p) > len(everything) / 5 for p in parts)  # roughly balanced
    chunks = [{chunk_of(off, chunk_bytes) for off, _ in p} for p in parts]
    assert not (chunks[0] & chunks[1] or chunks[0] & chunks[2] or chunks[1] & chunks[2])  # whole chunks


def test_a_missing_file_is_one_source_error_not_a_crash(tmp_path):
    missing = tmp_path / "gone.warc.gz"
    items = list(iter_records(local_opener(str(missing)), str(missing)))
    assert len(items) == 1 and isinstance(items[0], ReadError)
    assert items[0].reason == "source_error" and items[0].offset == 0 and "FileNotFoundError" in items[0].detail


class _DiesAfter(io.RawIOBase):
    """A network stream that gives up (retries exhausted) after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int):
        self._data, self._limit, self._pos = data, limit, 0

    def readable(self):
        return True

    def readinto(self, b):
        from pipelines.sources.errors import RetriesExhaustedError

        if self._pos >= self._limit:
            raise RetriesExhaustedError("HTTP 503 after 8 retries")
        n = min(len(b), self._limit - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def test_a_source_that_dies_mid_file_keeps_earlier_records():
    path = require_shared("realweb/realweb.warc.gz")
    data = path.read_bytes()
    cut = 5_000_000
    everything = read_all(path)[0]
    items = list(iter_records(stream_opener(lambda: _DiesAfter(data, cut)), "remote.warc.gz"))
    records = [i for i in items if isinstance(i, RawRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    assert [e.reason for e in errors] == ["source_error"] and "RetriesExhaustedError" in errors[0].detail
    # every record read is a real one, in order, up to shortly before the cut (read-ahead)
    assert [r.record_id for r in records] == [r.record_id for r in everything[:len(records)]]
    assert records and records[-1].offset < cut <= everything[len(records)].offset + 200_000
    assert errors[0].offset >= records[-1].offset


def test_a_body_that_cannot_be_decoded_is_a_dead_letter_not_a_broken_file(tmp_path):
    """A gzip Content-Encoding whose data is corrupt: that record is dead-lettered, the next is read."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from pipelines.config import load_config
    from pipelines.records import DEAD, header_outcome

    good = gzip.compress(b"<html><body><p>fine</p></body></html>", mtime=0)
    broken = good[:10] + b"\x00" * 20 + good[30:]
    path = tmp_path / "enc.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for name, body in (("broken", broken), ("good", good)):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                                       protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://example.org/{name}", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))
    records, errors = read_all(path, want=lambda r: r.rec_type == "response")
    assert not errors
    broken_rec, good_rec = records
    assert broken_rec.body is None and "gzip" in broken_rec.decode_error
    assert good_rec.decode_error is None and b"fine" in good_rec.body
    outcome = header_outcome(broken_rec, load_config()["extract"])
    assert outcome.status == DEAD and outcome.reason == "bad_content_encoding"
    assert outcome.dead["url"] == "https://example.org/broken"
