"""Streaming WARC/ARC record reading that survives corrupt input.

warcio parses records one at a time from a stream, so a 1 GB WARC never sits in memory.  What
warcio does not do is carry on after damage: a corrupt gzip member or a garbage header ends its
iterator.  ``iter_records`` restarts it: it scans forward from the failure for the next plausible
record start (a gzip member header in ``.gz`` files, a ``WARC/`` line in plain files), resumes
there, and reports the skipped byte range as one ``ReadError``.  A whole-file gzip (one member
holding many records, which warcio refuses) is re-read through a streaming decompressor.
Records are framed by ``warc_framing.GuardedIterator``, which does not trust a record's own
header: capped header lines/blocks, a checked Content-Length, and a record that does not end
where it says resyncs (so it cannot swallow the records after it).  Gzip members are inflated by
ISA-L with the results of warcio's zlib reader (``warc_framing`` says where they can differ).

No Beam import: this module is shared by the extract stage and the robots.txt reader.
"""
from __future__ import annotations

import contextlib
import io
import logging
import posixpath
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterator

from isal import isal_zlib
from warcio.exceptions import ArchiveLoadFailed

from pipelines import http_body
from pipelines.sources.errors import ObjectChangedError, RetriesExhaustedError
from pipelines.warc_framing import GZIP_MAGIC, WARC_MAGIC, FramingError, GuardedIterator, HeaderLimits, \
    ReadStats, is_arc, looks_gzipped, trailing_bytes

log = logging.getLogger(__name__)

SCAN_CHUNK = 1 << 20
DEFAULT_MAX_DECODED_BYTES = 20_000_000   # extract.max_decoded_bytes

# Errors that mean the source itself failed (file vanished, network gone past every retry, object
# replaced mid-read); resyncing cannot help, the rest of that file is reported as one dead letter.
SOURCE_ERRORS = (ConnectionError, TimeoutError, FileNotFoundError, PermissionError, IsADirectoryError,
                 RetriesExhaustedError, ObjectChangedError)


@dataclass
class RawRecord:
    """One framed WARC record; ``body`` is set only when the caller asked for it."""

    warc_file: str
    offset: int
    rec_type: str
    record_id: str | None
    target_uri: str | None
    date: str | None
    length: int | None                      # WARC Content-Length (block size)
    truncated: str | None                   # WARC-Truncated reason, if any
    identified_type: str | None             # WARC-Identified-Payload-Type
    http_status: int | None = None
    http_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None               # HTTP payload, transfer/content-encoding removed
    decode_error: str | None = None         # why ``body`` is None although it was read
    decode_reason: str | None = None        # dead-letter reason for decode_error

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.http_headers if key.lower() == name), None)

    def headers_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.http_headers if k.lower() == name]

    def fetch_datetime(self) -> datetime | None:
        return parse_warc_date(self.date)


@dataclass
class ReadError:
    """A part of a file that could not be read as records (goes to the dead-letter output)."""

    warc_file: str
    offset: int
    reason: str
    detail: str
    record_id: str | None = None
    target_uri: str | None = None
    skipped_bytes: int | None = None


class RecordDecodeError(Exception):
    """The HTTP body of one record could not be decoded; ``reason`` is the dead-letter reason
    (``bad_content_encoding`` or ``decoded_too_large``)."""

    def __init__(self, detail: str, reason: str = http_body.BAD_CONTENT_ENCODING):
        super().__init__(detail)
        self.reason = reason


def parse_warc_date(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:  # ARC dates: 14 digits
            parsed = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def decode_body(raw: bytes, http_headers: list[tuple[str, str]],
                max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> bytes:
    """Undo Transfer-Encoding: chunked and Content-Encoding, streaming, capped (pipelines.http_body)."""
    try:
        return http_body.decode_body(raw, http_headers, max_decoded_bytes)
    except http_body.BodyDecodeError as exc:
        raise RecordDecodeError(str(exc), exc.reason) from exc


Opener = Callable[[int], BinaryIO]
Wanted = Callable[[RawRecord], bool]


def _want_nothing(_: RawRecord) -> bool:
    return False


def _select_all(_: int) -> bool:
    return True


def iter_records(open_at: Opener, warc_file: str, *, want_body: Wanted = _want_nothing,
                 max_body_bytes: int = 5_000_000,
                 select: Callable[[int], bool] = _select_all,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                 header_limits: HeaderLimits | None = None,
                 stats: ReadStats | None = None) -> Iterator[RawRecord | ReadError]:
    """Yield every record of one WARC/ARC file, and a ReadError for each unreadable region.

    ``open_at(pos)`` returns a binary stream positioned at byte ``pos`` of the file (it is called
    again only after corruption).  ``want_body(record)`` decides, from the headers alone, whether
    the HTTP body is read; bodies longer than ``max_body_bytes`` are not read (``body`` stays None
    and the caller sees ``length``); a body that decodes to more than ``max_decoded_bytes`` is
    not kept either (``decode_reason`` "decoded_too_large").  ``select(offset)`` keeps only some
    records and errors: several readers of one file can split it between them (each still streams the whole file,
    but reads bodies only of the records it keeps).  ``header_limits`` caps a header line and a
    record's header block (``pipelines.warc_framing``: over the cap, a bad or missing
    Content-Length, or a record that does not end where it says is a ReadError, then resync).
    ``stats``, if given, counts what is yielded, for callers that check every item got an outcome.
    """
    limits = header_limits or HeaderLimits()
    for item in _iter_all(open_at, warc_file, want_body, max_body_bytes, select, max_decoded_bytes, limits):
        if select(item.offset):
            if stats is not None:
                if isinstance(item, ReadError):
                    stats.errors += 1
                else:
                    stats.records += 1
            yield item


def _iter_all(open_at: Opener, warc_file: str, want_body: Wanted, max_body_bytes: int,
              select: Callable[[int], bool],
              max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
              limits: HeaderLimits | None = None) -> Iterator[RawRecord | ReadError]:
    pos = 0
    pending: ReadError | None = None   # damage seen, reported once the next good record is found
    yielded = 0
    is_gzip: bool | None = None
    arc_name: str | None = None
    while True:
        try:
            stream = open_at(pos)
            if is_gzip is None:
                head = _peek(stream, 4096)
                is_gzip = looks_gzipped(head, warc_file)
                if is_arc(head, is_gzip):
                    arc_name = posixpath.basename(warc_file)
        except SOURCE_ERRORS as exc:
            if pending is not None:
                yield pending
            yield _source_error(warc_file, pos, exc)
            return
        iterator = GuardedIterator(stream, limits)
        # Streams that can tell() report absolute positions, wrapped ones count from 0.
        base = pos - iterator.offset
        try:
            resume, restart_at = False, None
            for rec in iterator:
                offset = base + iterator.offset
                record = _frame(rec, warc_file, offset, want_body if select(offset) else _want_nothing,
                                max_body_bytes, _arc_name(iterator, warc_file, arc_name), max_decoded_bytes)
                clean = iterator.finish_record(rec)
                if not clean and not is_gzip:
                    # Not followed by a blank line: if the next record starts before where
                    # reading stopped, this record's Content-Length swallowed it; else a few
                    # stray bytes follow (warcio skips them).
                    nxt = _scan(open_at, offset + 1, WARC_MAGIC)
                    if nxt is not None and nxt < base + iterator.checked_end:
                        raise FramingError("malformed_record", f"Content-Length runs into the next record at byte {nxt}")
                if pending is not None:
                    pending.skipped_bytes = record.offset - pending.offset
                    yield pending
                    pending = None
                yielded += 1
                yield record
                if not clean and is_gzip:
                    # Bytes after the record inside its member (a short Content-Length, or a corrupt
                    # member inflating past its end): positions inside a member mean nothing, so
                    # go on at the next member start instead of parsing them as records.
                    resume, restart_at = True, _scan(open_at, offset + 1, GZIP_MAGIC)
                    break
            if resume:
                _close(stream)
                if restart_at is None:
                    return
                pos = restart_at
                continue
            trailing = trailing_bytes(iterator)
            _close(stream)
            nxt = _scan(open_at, base + iterator.offset + 1, GZIP_MAGIC) if trailing and is_gzip else None
            if nxt is not None:
                # warcio stopped quietly at a member it could not read; later members may be fine.
                pending = pending or ReadError(warc_file, base + iterator.offset, "malformed_record",
                                               f"{trailing} bytes do not form a complete record")
                pos = nxt
                continue
            if trailing:
                # warcio ends quietly on a record cut short (a truncated download or gzip
                # member); those bytes were a record we could not read, so report them.
                tail = pending or ReadError(warc_file, base + iterator.offset, "truncated_record",
                                            f"{trailing} bytes at the end of the file do not form a complete record")
                tail.skipped_bytes = trailing if pending is None else None
                yield tail
            elif pending is not None:
                yield pending
            return
        except SOURCE_ERRORS as exc:
            _close(stream)
            if pending is not None:
                yield pending
            yield _source_error(warc_file, base + iterator.offset, exc)
            return
        except (FramingError, ArchiveLoadFailed, zlib.error, isal_zlib.error, EOFError, ValueError, OSError,
                IndexError, KeyError, UnicodeDecodeError, AttributeError, TypeError, ArithmeticError) as exc:
            # AttributeError/TypeError/IndexError: warcio's parser on garbage headers; isal_zlib.error
            # (not a zlib.error) only if the reader's own catch ever missed one.
            _close(stream)
            failed_at = max(base + iterator.offset, pos)   # resync always moves forward
            detail = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            if is_gzip and "non-chunked gzip" in str(exc) and pos == 0 and yielded == 1:
                # One gzip stream holding every record (warcio stops after the first); a corrupt
                # member inflating past its end, later in a file, is resynced instead.
                yield from _read_whole_gzip(open_at, warc_file, pos, skip=yielded if pos == 0 else 0,
                                            want_body=want_body, max_body_bytes=max_body_bytes, select=select,
                                            max_decoded_bytes=max_decoded_bytes, limits=limits)
                return
            if pending is None:
                reason = exc.reason if isinstance(exc, FramingError) else "malformed_record"
                pending = ReadError(warc_file, failed_at, reason, detail)
            # else: a false resync candidate inside the same damaged region; keep the first report
            try:
                nxt = _scan(open_at, failed_at + 1, GZIP_MAGIC if is_gzip else WARC_MAGIC)
            except SOURCE_ERRORS as exc:
                yield pending
                yield _source_error(warc_file, failed_at + 1, exc)
                return
            if nxt is None:
                pending.skipped_bytes = None  # to end of file
                pending.detail += " (no readable record after this point)"
                yield pending
                return
            log.debug("%s: corrupt data at byte %d, resuming at byte %d", warc_file, failed_at, nxt)
            pos = nxt


def _source_error(warc_file: str, offset: int, exc: BaseException) -> ReadError:
    return ReadError(warc_file, offset, "source_error",
                     f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]} (rest of the file not read)")


def _arc_name(iterator: GuardedIterator, warc_file: str, arc_name: str | None) -> str | None:
    """Name for ARC-style ids: also for a record warcio parsed as ARC in a WARC (else a random id)."""
    if arc_name is None and iterator.loader.last_format != "warc":
        return posixpath.basename(warc_file)
    return arc_name


def _frame(rec, warc_file: str, offset: int, want_body: Wanted, max_body_bytes: int,
           arc_name: str | None = None, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> RawRecord:
    h = rec.rec_headers
    if arc_name is not None:
        # ARC has no record ids; warcio invents random ones when converting, which would make
        # document ids differ run to run.  File name + offset is unique and stable.
        h.replace_header("WARC-Record-ID", f"<urn:arc:{arc_name}:{offset}>")
    length = h.get_header("Content-Length")
    record = RawRecord(
        warc_file=warc_file,
        offset=offset,
        rec_type=rec.rec_type or "unknown",
        record_id=h.get_header("WARC-Record-ID"),
        target_uri=h.get_header("WARC-Target-URI"),
        date=h.get_header("WARC-Date"),
        length=int(length) if length and length.strip().isdigit() else None,
        truncated=h.get_header("WARC-Truncated"),
        identified_type=h.get_header("WARC-Identified-Payload-Type"),
    )
    if rec.http_headers is not None and rec.rec_type in ("response", "revisit"):
        status = rec.http_headers.get_statuscode()
        record.http_status = int(status) if status and str(status).isdigit() else None
        record.http_headers = [(k, v) for k, v in rec.http_headers.headers]
    if want_body(record) and (record.length is None or record.length <= max_body_bytes):
        raw = rec.raw_stream.read(max_body_bytes + 1)
        if len(raw) > max_body_bytes:
            record.length = max(record.length or 0, len(raw))
        else:
            try:
                record.body = decode_body(raw, record.http_headers, max_decoded_bytes)
            except RecordDecodeError as exc:
                record.decode_error, record.decode_reason = str(exc), exc.reason
    return record


def _peek(stream: BinaryIO, n: int) -> bytes:
    if hasattr(stream, "peek"):
        return stream.peek(n)[:n]
    raise TypeError("open_at must return a buffered stream (with peek)")


def _close(stream) -> None:
    with contextlib.suppress(Exception):   # closing a broken stream must not hide the real error
        stream.close()


def _scan(open_at: Opener, start: int, magic: bytes) -> int | None:
    """Absolute position of the next record start at or after ``start``, or None at end of file.

    In gzip files a record starts with a gzip member header; in plain files with ``WARC/1.``,
    not necessarily after a newline: a record cut short and followed by another ends mid-line.
    A false candidate (the text inside a body) fails to parse and the scan goes on.
    """
    pattern, shift = magic, 0
    stream = open_at(start)
    try:
        base, carry = start, b""   # base: file position of data[len(carry)]
        while True:
            chunk = stream.read(SCAN_CHUNK)
            if not chunk:
                return None
            data = carry + chunk
            idx = data.find(pattern)
            if idx >= 0:
                return base - len(carry) + idx + shift
            carry = data[-(len(pattern) - 1):]
            base += len(chunk)
    finally:
        _close(stream)


def _read_whole_gzip(open_at: Opener, warc_file: str, pos: int, *, skip: int, want_body: Wanted,
                     max_body_bytes: int, select: Callable[[int], bool],
                     max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                     limits: HeaderLimits | None = None) -> Iterator[RawRecord | ReadError]:
    """Records of a file gzipped as one stream; offsets are positions in the decompressed data."""
    import gzip

    try:
        stream = open_at(pos)
    except SOURCE_ERRORS as exc:
        yield _source_error(warc_file, pos, exc)
        return
    try:
        with gzip.GzipFile(fileobj=stream) as plain:
            buffered = io.BufferedReader(plain)  # type: ignore[arg-type]
            iterator = GuardedIterator(buffered, limits)
            index = 0
            try:
                for rec in iterator:
                    offset = iterator.offset
                    record = _frame(rec, warc_file, offset, want_body if select(offset) else _want_nothing,
                                    max_body_bytes, _arc_name(iterator, warc_file, None), max_decoded_bytes)
                    iterator.finish_record(rec)
                    index += 1
                    if index <= skip:
                        continue  # already yielded by the member-by-member pass
                    yield record
            except Exception as exc:  # damaged inside the single stream: nothing after it is reachable
                yield ReadError(warc_file, iterator.offset, getattr(exc, "reason", "malformed_record"),
                                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
                                "(whole-file gzip; offsets are in decompressed bytes)")
    finally:
        _close(stream)


def local_opener(path: str) -> Opener:
    def open_at(pos: int) -> BinaryIO:
        fh = open(path, "rb")
        fh.seek(pos)
        return fh
    return open_at


def stream_opener(open_stream: Callable[[], BinaryIO]) -> Opener:
    """Opener over a sequential source: seek when it can, else read and discard ``pos`` bytes."""
    def open_at(pos: int) -> BinaryIO:
        raw = open_stream()
        if pos:
            try:
                seekable = raw.seekable()
            except Exception:  # a stream that cannot say is read and discarded
                seekable = False
            if seekable:
                raw.seek(pos)
            else:
                remaining = pos
                while remaining:
                    got = raw.read(min(remaining, SCAN_CHUNK))
                    if not got:
                        break
                    remaining -= len(got)
        if not hasattr(raw, "peek"):
            raw = io.BufferedReader(_RawAdapter(raw), buffer_size=1 << 16)
        return raw
    return open_at


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader wrap any object with read(n)."""

    def __init__(self, inner):
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._inner.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()
