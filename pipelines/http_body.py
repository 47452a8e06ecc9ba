"""HTTP body decoding (Transfer-Encoding: chunked, Content-Encoding) with a cap on decoded bytes.

Contract: ``decode_body(raw, headers, max_decoded_bytes)`` returns the payload with chunking and
Content-Encoding removed, or raises ``BodyDecodeError`` whose ``reason`` is the dead-letter reason:

* ``decoded_too_large``: the decoded payload would exceed ``max_decoded_bytes``.  Decoding is
  streamed (zlib ``max_length``, brotli ``output_buffer_limit``, zstd fed a few bytes at a time)
  and stops as soon as the cap is passed, so a 4 MB body that inflates to 4.5 GB costs at most
  the cap plus one step (64 KiB; ~1 MiB for zstd) of memory, never the inflated size.
* ``bad_content_encoding``: malformed chunking, corrupt or truncated compressed data, or an
  encoding this reader does not decode (anything but gzip, x-gzip, deflate, br, zstd, identity).

Dechunking only removes bytes, so its output is never larger than ``raw`` (which the WARC reader
already bounds by ``max_payload_bytes``).  A ``gzip`` body that does not start with the gzip magic
is returned as-is: some crawlers keep the header on a payload they stored decoded.
No Beam import; no dependency on the rest of the project.
"""
from __future__ import annotations

import re
import zlib
from typing import Callable, Iterable, Iterator

import brotli
import zstandard

STEP = 1 << 16                       # decoded bytes produced per decompressor call
ZSTD_FEED = 32
ZSTD_MAX_WINDOW = 8 << 20
MAX_CHUNK_LINE = 64                  # a chunk-size line longer than this is malformed (as in warcio)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})")

DECODED_TOO_LARGE = "decoded_too_large"
BAD_CONTENT_ENCODING = "bad_content_encoding"


class BodyDecodeError(Exception):
    """The body cannot be decoded within the limits; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class _TooLarge(Exception):
    pass


def content_encoding(http_headers: list[tuple[str, str]]) -> str | None:
    """The (single) Content-Encoding, lower-cased; None for none/identity."""
    value = next((v for k, v in http_headers if k.lower() == "content-encoding"), None)
    encoding = (value or "").strip().lower() or None
    return None if encoding in ("identity", "none") else encoding


def is_chunked(http_headers: list[tuple[str, str]]) -> bool:
    value = next((v for k, v in http_headers if k.lower() == "transfer-encoding"), None)
    return (value or "").strip().lower() == "chunked"


def dechunk(raw: bytes) -> bytes:
    """Strict ``Transfer-Encoding: chunked`` decoding; ValueError on malformed framing."""
    view, out, pos, end = memoryview(raw), bytearray(), 0, len(raw)
    while True:
        eol = raw.find(b"\n", pos, pos + MAX_CHUNK_LINE) - 1   # the line must end with CRLF
        ok = eol >= pos and raw[eol:eol + 1] == b"\r"
        match = _CHUNK_SIZE.fullmatch(raw[pos:eol].split(b";", 1)[0].strip()) if ok else None
        if match is None:
            raise ValueError(f"bad chunk-size line at byte {pos}: {raw[pos:pos + 20]!r}")
        size, pos = int(match.group(1), 16), eol + 2
        if size == 0:
            if raw[pos:pos + 2] != b"\r\n":
                raise ValueError("no CRLF after the last chunk")
            return bytes(out)
        if pos + size > end:
            raise ValueError(f"chunk of {size} bytes runs past the end of the body")
        out += view[pos:pos + size]
        pos += size
        if raw[pos:pos + 2] != b"\r\n":
            raise ValueError(f"chunk terminator not found at byte {pos}")
        pos += 2


def _zlib_pieces(data: bytes, wbits: int) -> Iterator[bytes]:
    dec = zlib.decompressobj(wbits)
    pending = data
    while True:
        piece = dec.decompress(pending, STEP)
        yield piece
        pending = dec.unconsumed_tail
        if dec.eof or (not pending and len(piece) < STEP):
            break
    if not dec.eof:
        raise ValueError("compressed stream ends early")


def _brotli_pieces(data: bytes) -> Iterator[bytes]:
    dec = brotli.Decompressor()
    piece = dec.process(data, output_buffer_limit=STEP)
    while True:
        yield piece
        if dec.is_finished() or dec.can_accept_more_data():
            break
        piece = dec.process(b"", output_buffer_limit=STEP)
    if not dec.is_finished():
        raise ValueError("compressed stream ends early")


def _zstd_pieces(data: bytes) -> Iterator[bytes]:
    # zstandard's decompressobj has no output bound, so it is fed ZSTD_FEED bytes at a time: the
    # smallest zstd block (4 bytes) yields at most 128 KiB, so one call yields at most ~1 MiB.
    # The window is limited to the 8 MiB that RFC 9659 asks HTTP decoders to support.
    dec = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
    view = memoryview(data)
    for pos in range(0, len(data), ZSTD_FEED):
        yield dec.decompress(view[pos:pos + ZSTD_FEED])
        if dec.eof:
            return
    raise ValueError("compressed stream ends early")


def _gzip_pieces(data: bytes) -> Iterable[bytes]:
    if data[:2] != b"\x1f\x8b":
        return (data,)
    return _zlib_pieces(data, 16 + zlib.MAX_WBITS)


def _deflate_pieces(data: bytes) -> Iterator[bytes]:
    # Servers send either zlib-wrapped or raw deflate under this name.
    return _zlib_pieces(data, zlib.MAX_WBITS if data[:1] == b"\x78" else -zlib.MAX_WBITS)


DECODERS: dict[str, Callable[[bytes], Iterable[bytes]]] = {
    "gzip": _gzip_pieces, "x-gzip": _gzip_pieces, "deflate": _deflate_pieces,
    "br": _brotli_pieces, "zstd": _zstd_pieces,
}


def _collect(pieces: Iterable[bytes], cap: int) -> bytes:
    out, size = [], 0
    for piece in pieces:
        size += len(piece)
        if size > cap:
            raise _TooLarge(size)
        out.append(piece)
    return b"".join(out)


def decode_body(raw: bytes, http_headers: list[tuple[str, str]], max_decoded_bytes: int) -> bytes:
    """Undo chunking and Content-Encoding.

    Holds at most ``max_decoded_bytes`` + one step of decoded pieces, then the joined copy:
    peak about twice the cap, whatever the compressed data claims.
    """
    encoding = content_encoding(http_headers)
    if encoding and encoding not in DECODERS:
        raise BodyDecodeError(BAD_CONTENT_ENCODING, f"unsupported Content-Encoding {encoding!r}")
    chunked = is_chunked(http_headers)
    label = f"{'chunked ' if chunked else ''}{encoding or ''}".strip()
    try:
        body = dechunk(raw) if chunked else raw
        if len(body) > max_decoded_bytes:
            raise _TooLarge(len(body))
        return _collect(DECODERS[encoding](body), max_decoded_bytes) if encoding else body
    except _TooLarge as exc:
        raise BodyDecodeError(DECODED_TOO_LARGE, f"{label or 'body'}: {len(raw)} bytes decode to more than "
                              f"{max_decoded_bytes} (stopped at {exc.args[0]})") from None
    except Exception as exc:  # ValueError, zlib.error, brotli.error, zstandard.ZstdError
        raise BodyDecodeError(BAD_CONTENT_ENCODING,
                              f"cannot decode body ({label}): {type(exc).__name__}: {exc!s:.200}") from exc
