"""Decoding HTML bytes to text without silently producing mojibake.

Order: byte-order mark, HTTP ``Content-Type`` charset, ``<meta charset>`` / ``http-equiv``, then
detection.  As in the WHATWG prescan, a UTF-16 label found in ``<meta>`` means UTF-8 (a page whose
``<meta>`` can be read as ASCII is not UTF-16) and ``x-user-defined`` means windows-1252; a UTF-16
label in the HTTP header over bytes with no NUL in the first 4 KB (so no UTF-16 markup) is ignored.
A declared charset is used only if the bytes decode under it strictly; a declaration
of a single-byte legacy codec over bytes that are valid multi-byte UTF-8 is overridden (that
combination is almost always a wrong declaration, and decoding it as declared is the classic
mojibake).  When nothing decodes cleanly and detection is not confident, ``UndecodableError`` is
raised so the record is dead-lettered instead of kept garbled.  A page that is UTF-8 apart from
a few stray bytes (at least 8 valid multi-byte characters, at most one invalid sequence per 10 of
them) is decoded as UTF-8 with the stray bytes replaced (source ``utf8-mostly``) before a
single-byte declaration or detection can turn it into mojibake.
"""
from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

META_SCAN_BYTES = 4096

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)

# WHATWG encoding labels that browsers map differently from Python's codec names.
_WHATWG_ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252",
    "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252", "iso-8859-9": "cp1254",
    "x-sjis": "shift_jis", "shift-jis": "shift_jis", "sjis": "shift_jis", "ms932": "cp932",
    "windows-31j": "cp932", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "tis-620": "cp874", "iso-8859-11": "cp874",
    "utf8": "utf-8", "x-user-defined": "cp1252",
    # UTF-16 labels: WHATWG decodes "utf-16" and its aliases as little-endian without a BOM
    "utf-16": "utf-16-le", "utf-16le": "utf-16-le", "unicode": "utf-16-le", "csunicode": "utf-16-le",
    "iso-10646-ucs-2": "utf-16-le", "ucs-2": "utf-16-le", "unicodefeff": "utf-16-le",
    "utf-16be": "utf-16-be", "unicodefffe": "utf-16-be",
}
_UTF16 = {"utf-16", "utf-16-le", "utf-16-be"}

_SINGLE_BYTE = {"cp1252", "iso8859-1", "latin-1", "cp1250", "iso8859-2", "cp1251", "koi8-r", "cp1254",
                "iso8859-15", "cp874", "mac-roman", "cp437", "ascii"}


class UndecodableError(ValueError):
    """No charset decodes the page cleanly with enough confidence."""


def normalise_label(label: str | None) -> str | None:
    """Python codec name for an HTTP/HTML charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1) if match else None


def meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:META_SCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8_multibyte(body: bytes) -> str | None:
    """Text if ``body`` is valid UTF-8 containing at least one multi-byte sequence."""
    if body.isascii():
        return None
    return _strict(body, "utf-8")


# A page that is UTF-8 but for a few stray bytes (a latin-1 string pasted into a template, a
# multi-byte character cut by a CMS) is still a UTF-8 page: decoding it as a legacy codec turns
# every one of its many multi-byte characters into mojibake ("schÃ¶n").  Legacy single-byte text
# almost never forms valid UTF-8 sequences (a lead byte C2-F4 followed by the right number of
# 80-BF bytes), so "many valid sequences, few invalid ones" identifies UTF-8.
MOSTLY_UTF8_MIN_CHARS = 8         # valid multi-byte characters needed
MOSTLY_UTF8_MAX_BAD_SHARE = 0.1   # invalid sequences per valid multi-byte character
_REPLACEMENT = "\ufffd"


def _mostly_utf8(body: bytes) -> str | None:
    """Text (invalid bytes as U+FFFD) if ``body`` is UTF-8 apart from a few invalid sequences."""
    if body.isascii():
        return None
    text = body.decode("utf-8", "replace")
    replaced = text.count(_REPLACEMENT)
    bad = replaced - body.count(_REPLACEMENT.encode("utf-8"))   # U+FFFD already in the page is no error
    multi = len(text) - len(text.encode("ascii", "ignore")) - replaced
    if multi >= MOSTLY_UTF8_MIN_CHARS and bad <= multi * MOSTLY_UTF8_MAX_BAD_SHARE:
        return text
    return None


def decode_html(body: bytes, content_type: str | None = None,
                min_confidence: float = 0.5) -> tuple[str, str, str]:
    """Return ``(text, codec, source)``; source is bom|header|meta|utf8-valid|utf8-mostly|ascii|detected."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            text = _strict(body[len(bom):] if codec == "utf-8" else body, codec)
            if text is not None:
                return text, codec, "bom"

    for source, label in (("header", header_charset(content_type)), ("meta", meta_charset(body))):
        codec = normalise_label(label)
        if not codec:
            continue
        if codec in _UTF16:
            if source == "meta":
                codec = "utf-8"      # WHATWG prescan: a <meta> we could read as ASCII is not UTF-16
            elif b"\x00" not in body[:META_SCAN_BYTES]:
                continue             # UTF-16 markup has a NUL in every ASCII character
        if codec in _SINGLE_BYTE:
            utf8 = _utf8_multibyte(body)
            if utf8 is not None:
                return utf8, "utf-8", "utf8-valid"
            utf8 = _mostly_utf8(body)
            if utf8 is not None:
                return utf8, "utf-8", "utf8-mostly"
        text = _strict(body, codec)
        if text is not None:
            return text, codec, source

    if body.isascii():
        return body.decode("ascii"), "ascii", "ascii"
    text = _strict(body, "utf-8")
    if text is not None:
        return text, "utf-8", "utf8-valid"
    text = _mostly_utf8(body)
    if text is not None:
        return text, "utf-8", "utf8-mostly"
    best = from_bytes(body).best()
    if best is None:
        raise UndecodableError("no charset decodes the payload")
    confidence = 1.0 - float(best.chaos)
    if confidence < min_confidence:
        raise UndecodableError(f"charset detection not confident: {best.encoding} "
                               f"(confidence {confidence:.2f} < {min_confidence})")
    return str(best), normalise_label(best.encoding) or best.encoding, "detected"


def utf8_of(body: bytes, codec: str, source: str) -> bytes | None:
    """The UTF-8 encoding of ``decode_html(body)``'s text when it is ``body`` itself (or ``body``
    after a UTF-8 byte-order mark): the text came from a strict UTF-8 or ASCII decode, which maps
    bytes to text one to one.  None otherwise (replaced bytes, other codecs, detection)."""
    if codec == "utf-8" and source == "bom":
        return body[len(codecs.BOM_UTF8):]
    if (codec == "utf-8" and source in ("header", "meta", "utf8-valid")) or (codec, source) == ("ascii", "ascii"):
        return body
    return None
