"""Record framing that does not trust what a hostile WARC declares.

warcio frames records by believing each record's headers: it reads a header line of any length
into memory, turns a negative or non-numeric ``Content-Length`` into 0, passes a 20-digit one to
``BytesIO.readline`` (OverflowError), and with a missing or too large one reads the rest of the
file as one body, swallowing the records after it.  ``GuardedIterator`` is warcio's
``ArchiveIterator`` with three guards, each raising ``FramingError`` (the reader dead-letters the
record and resyncs at the next record start):

- a header line longer than ``max_line`` bytes, or a record whose WARC + HTTP header lines
  together pass ``max_block`` bytes, is ``malformed_record`` -- at most ``max_line + 1`` bytes of
  a line are ever held (``_CappedReader.readline``);
- a ``WARC/1.`` inside a record's header lines (a record cut short, then the next one) is
  ``malformed_record``, so the next record is not merged into the cut one;
- ``Content-Length`` (ARC: the length field) must be 1 to 18 ASCII digits, else
  ``malformed_record`` before warcio uses it;
- ``finish_record`` reads the rest of a record's block: a WARC record ending before its
  ``Content-Length`` is ``truncated_record`` at the end of the file, else (a corrupt or short gzip
  member) ``malformed_record``; one not followed by a
  blank line does not end where its ``Content-Length`` says, and the reader checks whether the
  next record start lies inside it (``pipelines.warc``: then ``malformed_record`` and the next
  record is read, instead of being swallowed as this record's body).  Legacy ARC records
  (lengths often a little off, no CC data since 2013) keep warcio's framing and lenient lengths.

Gzip members are inflated by ISA-L (``isal``; about half zlib's CPU), yet the reader stays
exactly warcio's zlib reader: a member is inflated in one pass only when ISA-L inflates it
completely (plain gzip header, CRC and length checked, at most ``MAX_ONE_PASS_MEMBER_BYTES``);
anything else -- corrupt, truncated, over the cap -- is read the zlib way from its first byte, and
where framing looks at the reader's state inside a one-pass member (the bytes after a record,
positions), that state is first rebuilt as zlib would have it (``_CappedReader.settle``).  So
records, offsets, ids and dead letters do not depend on the inflater (tests/test_warc_inflate.py)
for every member both inflaters accept.  The one known difference: ISA-L does not check that a
Huffman code set is complete, so a crafted member with a correct CRC can inflate under ISA-L
where zlib refuses it (a record, or another dead letter, instead of zlib's dead letter; never
an exception).  A reader holds at most ~24 MiB for a one-pass member (compressed chunks,
inflated parts and their join).

``ReadStats`` counts what the reader yields, independently of whatever consumes it, so a
summary can check that every item read got an outcome.  No Beam import.
"""
from __future__ import annotations

import contextlib
import re
import zlib
from dataclasses import dataclass
from io import BytesIO

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.recordloader import ArcWarcRecordLoader
from warcio.utils import BUFF_SIZE

# extract.max_header_line_bytes / extract.max_header_block_bytes.  Browsers refuse a response
# whose headers pass 256 KiB; a WARC header line is a URL or a digest, far shorter.
DEFAULT_MAX_HEADER_LINE_BYTES = 262_144
DEFAULT_MAX_HEADER_BLOCK_BYTES = 1_048_576

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = WARC_START = b"WARC/1."
_LENGTH = re.compile(r"[0-9]{1,18}")   # fits in 63 bits; anything longer is not a real length


class FramingError(Exception):
    """A record whose framing cannot be trusted; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class HeaderLimits:
    line: int = DEFAULT_MAX_HEADER_LINE_BYTES
    block: int = DEFAULT_MAX_HEADER_BLOCK_BYTES

    def __post_init__(self):
        if not (isinstance(self.line, int) and isinstance(self.block, int) and self.line > 0 and self.block > 0):
            raise ValueError(f"header limits must be positive integers, got {self.line!r}, {self.block!r}")


@dataclass
class ReadStats:
    """What one reader yielded: framed records and unreadable regions (ReadErrors)."""

    records: int = 0
    errors: int = 0

    @property
    def items(self) -> int:
        return self.records + self.errors


def gzip_member_inflater():
    """ISA-L's gzip inflater (``isal``), about twice as fast as zlib's on Common Crawl members."""
    return isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)


# A member is inflated in one pass only up to this many compressed or inflated bytes (memory bound);
# a larger one is read the zlib way, 16 KiB at a time.
MAX_ONE_PASS_MEMBER_BYTES = 8 << 20
_PLAIN_GZIP_HEADER = b"\x1f\x8b\x08\x00"   # deflate, no optional header fields (what WARC writers emit)


class _Pushback:
    """The file object under the reader: chunks handed back are read again first, and ``tell()``
    counts them as not read, so positions are those of a reader that never read them."""

    def __init__(self, inner):
        self.inner = inner
        self._back: list[bytes] = []   # a stack: the next chunk to read is last
        self._pending = 0

    def unread(self, chunks: list[bytes]) -> None:
        self._back.extend(reversed(chunks))
        self._pending += sum(len(c) for c in chunks)

    def read(self, size=-1):
        if not self._back:
            return self.inner.read(size)
        chunk = self._back.pop()
        if size is not None and 0 <= size < len(chunk):
            chunk, rest = chunk[:size], chunk[size:]
            self._back.append(rest)
        self._pending -= len(chunk)
        return chunk

    def tell(self):
        return self.inner.tell() - self._pending

    def close(self):
        self.inner.close()


class _Inflated:
    """Stands for zlib's inflater after the end of a member: later input goes to ``unused_data``."""

    eof = True

    def __init__(self, unused_data: bytes):
        self.unused_data = unused_data

    def decompress(self, data: bytes) -> bytes:
        self.unused_data += data
        return b""

    def flush(self) -> bytes:
        return b""


class _CappedReader(DecompressingBufferedReader):
    """warcio's reader with a bounded ``readline`` and a per-record header byte budget.

    Gzip members are inflated with ISA-L, the whole member in one pass (``_inflate_member``), yet
    everything the reader shows is what warcio's zlib reader, 16 KiB at a time, would show: a member
    ISA-L cannot inflate completely (corrupt, truncated, too large, optional header fields) is given
    back and read the zlib way from its first byte, and before anything looks at the reader's state
    in the middle of a one-pass member (buffered bytes, positions), ``settle`` rebuilds zlib's state
    at that point by re-inflating the member's chunks with zlib.  ``member_inflater = None`` reads
    every member the zlib way (the reference the tests compare with).
    """

    member_inflater = staticmethod(gzip_member_inflater)

    def __init__(self, stream, limits: HeaderLimits):
        super().__init__(stream, block_size=BUFF_SIZE)
        self.limits = limits
        self.header_budget: int | None = None   # set while a record's headers are parsed
        self._one_pass: tuple[list[bytes], int] | None = None   # (chunks, num_read before) of a one-pass member

    def _init_decomp(self, decomp_type):
        super()._init_decomp(decomp_type)
        self._fresh = self.decompressor is not None and self.decomp_type == "gzip"
        self._one_pass = None

    def _decompress(self, data):
        self._fresh = False
        return super()._decompress(data)

    def _fillbuff(self, block_size=None):
        if not self.empty():
            return
        # The one-pass member's bytes are all read: zlib's reader would now have reached its end too.
        self._one_pass = None
        if self.rem_length() > 0:
            return
        if self._fresh and self.member_inflater is not None and isinstance(self.stream, _Pushback) \
                and self._inflate_member(block_size or self.block_size):
            return
        super()._fillbuff(block_size)

    def _inflate_member(self, block_size: int) -> bool:
        """Inflate the next member in one pass, reading the same chunks zlib's reader would; False
        (every chunk given back) when it cannot be inflated completely."""
        from_start = bool(self.starting_data)
        if from_start:
            data, self.starting_data = self.starting_data, None
        else:
            data = self.stream.read(block_size)
        chunks, parts, size, inflated = [data], [], len(data), 0
        if data[:4] == _PLAIN_GZIP_HEADER:
            inflater = self.member_inflater()
            try:
                while True:
                    part = inflater.decompress(data)
                    parts.append(part)
                    inflated += len(part)
                    if inflater.eof or inflated > MAX_ONE_PASS_MEMBER_BYTES or size > MAX_ONE_PASS_MEMBER_BYTES:
                        break
                    data = self.stream.read(block_size)
                    if not data:
                        break
                    chunks.append(data)
                    size += len(data)
            except isal_zlib.error:
                pass
            else:
                if inflater.eof and 0 < inflated <= MAX_ONE_PASS_MEMBER_BYTES:
                    self._one_pass = (chunks, self.num_read)
                    self.decompressor, self._fresh = _Inflated(inflater.unused_data), False
                    self.buff = BytesIO(b"".join(parts))
                    self.buff_size = inflated
                    self.num_read += inflated
                    self.num_block_read += inflated
                    return True
        if from_start:
            self.starting_data = chunks.pop(0)
        self.stream.unread([c for c in chunks if c])
        return False

    def settle(self) -> None:
        """Make the reader's state zlib's: the inflater after the chunks zlib's reader would have
        read to hand out what has been read of the member so far, the rest of them unread."""
        if self._one_pass is None:
            return
        (chunks, num_read), self._one_pass = self._one_pass, None
        consumed = self.buff.tell()
        target = max(consumed, 1)   # a fill was asked for, so zlib's reader holds some output
        inflater = DecompressingBufferedReader.DECOMPRESSORS["gzip"]()
        done, read = 0, 0
        for read, chunk in enumerate(chunks, 1):
            out = inflater.decompress(chunk)
            if done + len(out) >= target:
                break
            done += len(out)
        self.decompressor = inflater
        self.buff = BytesIO(out)
        self.buff.seek(consumed - done)
        self.buff_size = len(out)
        self.num_read = num_read + done + len(out)
        self.num_block_read = done + len(out)
        self.stream.unread(chunks[read:])

    def rest_is_blank(self) -> bool:
        """Whether only CR/LF bytes are left of a one-pass member (what zlib's reader would have
        buffered of them then is a prefix, so a look at the buffer sees the same)."""
        if self._one_pass is None:
            return False
        at = self.buff.tell()
        rest = self.buff.read(65)
        self.buff.seek(at)
        return len(rest) <= 64 and not rest.strip(b"\r\n")

    def readline(self, length=None):
        if length == 0:
            return b""
        cap = self.limits.line + 1
        limit = cap if length is None else min(length, cap)
        if limit <= 0:
            line = b""
        else:
            self._fillbuff()
            line = b"" if self.empty() else self.buff.readline(limit)
            if line and len(line) < limit and not line.endswith(b"\n"):
                line = self._readline_rest(line, limit)   # the line goes on past this buffer
        if len(line) > self.limits.line:
            raise FramingError("malformed_record", f"header line longer than {self.limits.line} bytes")
        if self.header_budget is not None:
            if b"WARC/1." in line:   # a record cut short inside its headers, then the next record
                raise FramingError("malformed_record", "a record starts inside this record's headers")
            self.header_budget -= len(line)
            if self.header_budget < 0:
                raise FramingError("malformed_record", f"record headers longer than {self.limits.block} bytes")
        return line

    def _readline_rest(self, head: bytes, limit: int) -> bytes:
        parts, got = [head], len(head)
        while got < limit:
            self._fillbuff()
            if self.empty():
                break
            piece = self.buff.readline(limit - got)
            parts.append(piece)
            got += len(piece)
            if piece.endswith(b"\n"):
                break
        return b"".join(parts)


@contextlib.contextmanager
def zlib_members():
    """While active, every gzip member is read the zlib way (``_CappedReader.member_inflater =
    None``): the reference the one-pass inflater is compared with (tests, bench_warc_readers.py)."""
    saved = vars(_CappedReader)["member_inflater"]
    _CappedReader.member_inflater = None
    try:
        yield
    finally:
        _CappedReader.member_inflater = saved


class _CheckedLoader(ArcWarcRecordLoader):
    """Refuses a record whose length field is missing or not a plain number, before it is used."""

    def __init__(self):
        super().__init__(verify_http=False, arc2warc=True)
        self.last_format: str | None = None

    def _detect_type_load_headers(self, stream, statusline=None, known_format=None):
        the_format, headers = super()._detect_type_load_headers(stream, statusline, known_format)
        self.last_format = the_format
        name = "length" if the_format == "arc" else "Content-Length"
        value = (headers.get_header(name) or "").strip()
        if the_format != "warc":
            # Legacy ARC keeps warcio's leniency (a bad length reads as 0) but never an overflow.
            if len(value) > 19:
                raise FramingError("malformed_record", f"bad ARC length {value[:40]!r}")
        elif not value:
            raise FramingError("malformed_record", "WARC record has no Content-Length")
        elif not _LENGTH.fullmatch(value):
            raise FramingError("malformed_record", f"bad Content-Length {value[:40]!r}")
        return the_format, headers


class GuardedIterator(ArchiveIterator):
    """``ArchiveIterator(fileobj, arc2warc=True)`` with the guards described in the module doc."""


    def __init__(self, fileobj, limits: HeaderLimits | None = None):
        super().__init__(fileobj, arc2warc=True)
        self.limits = limits or HeaderLimits()
        self.fh = _Pushback(self.fh)
        self.reader = _CappedReader(self.fh, self.limits)   # nothing has been read yet
        self.loader = _CheckedLoader()

    def _next_record(self, next_line):
        while not next_line:   # blank lines before a record (a gzip member may start with them)
            next_line = self.reader.readline()
            if not next_line:
                break          # end of data: warcio's parser sees b"" and ends the iteration
            if not next_line.strip():
                next_line = None
        self.reader.header_budget = self.limits.block - len(next_line or b"")
        try:
            return super()._next_record(next_line)
        except FramingError as exc:
            if exc.reason == "malformed_record" and "no Content-Length" in str(exc) and self._at_end_of_data():
                raise FramingError("truncated_record", "the file ends inside the record's headers") from None
            raise
        finally:
            if self.reader is not None:
                self.reader.header_budget = None

    def _consume_blanklines(self):
        """(next record's first line or None, blank bytes skipped) -- unlike warcio's, never skips
        a non-blank line: ``finish_record`` has already read the line after the block."""
        skipped = 0
        while True:
            line = self.reader.readline()
            if not line or line.strip():
                if line:
                    self.reader.settle()   # warcio takes a position here, inside the member
                return line or None, skipped
            skipped += len(line)

    def _at_end_of_data(self) -> bool:
        """Nothing left in the file (reads ahead: only called when the record is given up)."""
        self.reader.settle()
        self.reader._fillbuff()
        return self.reader.empty() and not self.reader.rem_length() and not self.fh.read(1)

    def finish_record(self, rec) -> bool:
        """Read the rest of ``rec``'s block (streaming); False if it is not followed by a blank line.

        ``checked_end`` is then the stream position after the line that followed the block (a
        record starting before it was read as part of this one).  Raises ``FramingError``
        for a WARC record whose data ends before its Content-Length.
        """
        stream = rec.raw_stream
        while stream.read(BUFF_SIZE):
            pass
        if self.loader.last_format != "warc":
            return True   # legacy ARC: lengths are often a little off; warcio's framing is kept
        missing = getattr(stream, "limit", 0)
        if missing > 0:
            at_eof = self._at_end_of_data()
            raise FramingError("truncated_record" if at_eof else "malformed_record",
                               f"data ends {missing} bytes before the record's Content-Length"
                               f"{' (end of file)' if at_eof else ' (corrupt gzip member or wrong length)'}")
        line = self.reader.readline()
        if line.strip() or not self.reader.rest_is_blank():
            self.reader.settle()   # positions and what follows are taken as zlib's reader has them
        self.checked_end = self.fh.tell() - self.reader.rem_length()   # after that line (used if not clean)
        if line.strip():
            return False
        # A block ends with CRLF CRLF and the next thing is a record or the end of the data: a
        # Content-Length that ends just before some header's CRLF would pass the first test
        # alone.  Only what is already buffered is looked at (nothing is consumed).
        buff, ahead = self.reader.buff, b""
        if buff is not None:
            at = buff.tell()
            ahead = buff.read(64).lstrip(b"\r\n")
            buff.seek(at)
        return not ahead or ahead.startswith(WARC_START) or (len(ahead) < 7 and WARC_START.startswith(ahead))


def trailing_bytes(iterator: ArchiveIterator) -> int:
    """Raw bytes the iterator consumed past the end of the last complete record."""
    try:
        consumed = iterator.fh.tell()
    except Exception:
        return 0
    reader = iterator.reader
    leftover = reader.rem_length() if reader is not None else 0
    extra = consumed - leftover - iterator.offset
    return extra if extra > 4 else 0  # a few stray CR/LF after the last record are not a record


def looks_gzipped(head: bytes, warc_file: str) -> bool:
    """Whether records are gzip members; a damaged first byte must not turn a .gz into plain text."""
    if head[:3] == GZIP_MAGIC:
        return True
    if head[:7] == WARC_MAGIC or head[:11] == b"filedesc://":
        return False
    return warc_file.lower().endswith(".gz") or (GZIP_MAGIC in head and WARC_MAGIC not in head)


def is_arc(head: bytes, is_gzip: bool) -> bool:
    if is_gzip:
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return False
    return head.startswith(b"filedesc://")
