"""Charset decoding: header, then <meta>, then detection; never mojibake."""
from __future__ import annotations

import random

import pytest

from pipelines.charset import UndecodableError, decode_html, normalise_label, utf8_of

GERMAN = "Größenwahn: Bücher über Äpfel kosten 5 € — naïve Café-Kultur. " * 20
POLISH = "Zażółć gęślą jaźń. Łódź i Gdańsk są pięknymi miastami, mówią mieszkańcy. " * 20
JAPANESE = "日本語のテキストです。東京は大きな都市で、多くの人が住んでいます。" * 20


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{body}</p></body></html>"


def test_meta_charset_windows_1252():
    raw = page(GERMAN, '<meta charset="windows-1252">').encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text, codec, source = decode_html(raw, "text/html")
    assert "Größenwahn" in text and "5 €" in text
    assert (codec, source) == ("cp1252", "meta")


def test_http_header_wins_over_meta():
    raw = page(POLISH, '<meta charset="utf-8">').encode("iso-8859-2")
    text, codec, source = decode_html(raw, "text/html; charset=ISO-8859-2")
    assert "Zażółć gęślą jaźń" in text
    assert source == "header" and codec == "iso8859-2"


def test_http_equiv_shift_jis():
    head = '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
    raw = page(JAPANESE, head).encode("shift_jis")
    text, codec, source = decode_html(raw, "text/html")
    assert "東京は大きな都市" in text
    assert source == "meta" and codec == "shift_jis"


def test_latin1_declared_over_utf8_bytes_is_not_turned_into_mojibake():
    raw = page(GERMAN).encode("utf-8")
    text, codec, source = decode_html(raw, "text/html; charset=iso-8859-1")
    assert "Größenwahn" in text and "Ã" not in text
    assert (codec, source) == ("utf-8", "utf8-valid")


def test_wrong_multibyte_declaration_falls_through_to_something_that_decodes():
    raw = page(POLISH).encode("utf-8")
    text, _, _ = decode_html(raw, "text/html; charset=shift_jis")
    assert "Zażółć gęślą jaźń" in text


def test_undeclared_legacy_page_is_detected():
    raw = page(POLISH).encode("cp1250")
    text, codec, source = decode_html(raw, "text/html")
    assert source == "detected"
    assert "gęślą" in text, codec


def test_utf8_bom():
    raw = b"\xef\xbb\xbf" + page(GERMAN).encode("utf-8")
    text, codec, source = decode_html(raw)
    assert source == "bom" and text.startswith("<html>")


def test_random_bytes_are_refused_not_guessed():
    rng = random.Random(7)
    raw = bytes(rng.randrange(128, 256) for _ in range(3000))
    with pytest.raises(UndecodableError):
        decode_html(raw, None, min_confidence=0.9)


@pytest.mark.parametrize("label,codec", [("ISO-8859-1", "cp1252"), ("latin1", "cp1252"),
                                         ("x-sjis", "shift_jis"), ("UTF8", "utf-8"),
                                         ("gb2312", "gb18030"), ("no-such-charset", None)])
def test_labels_follow_browser_aliases(label, codec):
    assert normalise_label(label) == codec


ENGLISH = "The quick brown fox jumps over the lazy dog while the committee reviews the budget. " * 10


@pytest.mark.parametrize("head", ['<meta charset="utf-16">', "<meta charset=UTF-16LE>", "<meta charset='utf-16be'>",
                                  '<meta http-equiv="Content-Type" content="text/html; charset=utf-16">',
                                  '<meta http-equiv="content-type" content="text/html;charset=UTF-16BE">',
                                  '<meta charset="unicode">'])
@pytest.mark.parametrize("body,pad", [(ENGLISH, ""), (ENGLISH, " "), (GERMAN, ""), (GERMAN, " ")])
def test_a_utf16_label_in_meta_means_utf8(head, body, pad):
    """WHATWG prescan: a <meta> that could be read as ASCII is not UTF-16, so the label means UTF-8.
    Both lengths (even/odd) so a strict UTF-16 decode cannot 'succeed' or fail by luck."""
    raw = (page(body, head) + pad).encode("utf-8")
    text, codec, source = decode_html(raw, "text/html")
    assert body[:40] in text and "<html>" in text
    assert codec == "utf-8" and source in ("meta", "utf8-valid")


def test_a_utf16_label_in_the_header_over_8bit_bytes_is_ignored():
    raw = page(ENGLISH).encode("utf-8")
    for pad in (b"", b" "):
        text, codec, _ = decode_html(raw + pad, "text/html; charset=utf-16")
        assert ENGLISH[:40] in text and codec in ("ascii", "utf-8")
    text, codec, _ = decode_html(page(GERMAN).encode("utf-8"), "text/html; charset=UTF-16LE")
    assert "Größenwahn" in text and codec == "utf-8"


@pytest.mark.parametrize("label,encoding", [("utf-16", "utf-16-le"), ("utf-16le", "utf-16-le"),
                                            ("utf-16be", "utf-16-be")])
def test_a_real_utf16_page_declared_in_the_header_still_decodes(label, encoding):
    raw = page(JAPANESE).encode(encoding)  # no BOM
    text, codec, source = decode_html(raw, f"text/html; charset={label}")
    assert "東京は大きな都市" in text and (codec, source) == (encoding, "header")


def test_x_user_defined_in_meta_means_windows_1252():
    raw = page(GERMAN, '<meta charset="x-user-defined">').encode("cp1252")
    text, codec, source = decode_html(raw, "text/html")
    assert "Größenwahn" in text and "5 €" in text and (codec, source) == ("cp1252", "meta")


# A UTF-8 page with a few stray bytes (seen in realweb: 75-499 valid multi-byte characters and 1-4
# latin-1 bytes pasted into a script or alt text) was detected as cp1250 / iso8859-10 /
# mac-latin2 and kept as mojibake ("schÃ¶n", "fĂĽr").
_GERMAN = ("Schöne Grüße aus Köln: Die Bäckerei öffnet früh, die Straßenbahn fährt später. "
           "Über die Brücke gehen wir zu Fuß und genießen die Aussicht. ") * 3


@pytest.mark.parametrize("declared", [None, "text/html; charset=iso-8859-1", "text/html; charset=windows-1252"])
def test_utf8_with_a_few_stray_latin1_bytes_stays_utf8(declared):
    body = ("<html><body><p>" + _GERMAN + "</p><img alt='K").encode("utf-8") + b"\xfc" + \
        "chenblogs'><p>Mitgef".encode("utf-8") + b"\xfchl w\xe4hlen</p></body></html>"
    text, codec, source = decode_html(body, declared)
    assert codec == "utf-8" and source == "utf8-mostly"
    assert _GERMAN.strip() in text                       # every umlaut intact
    assert "Ã" not in text and "Ä‚" not in text          # no mojibake
    assert text.count("\ufffd") == 3                      # the stray bytes, visibly replaced


def test_a_real_latin1_page_with_many_umlauts_is_not_taken_for_utf8():
    body = ("<html><body><p>" + _GERMAN + "</p></body></html>").encode("cp1252")
    text, codec, source = decode_html(body, "text/html; charset=windows-1252")
    assert (codec, source) == ("cp1252", "header") and _GERMAN.strip() in text


def test_a_few_valid_sequences_in_a_latin1_page_do_not_make_it_utf8():
    # "Ã©" pasted twice into a cp1252 page: valid UTF-8 pairs, but far fewer than the invalid bytes.
    body = ("<p>" + _GERMAN + "</p>").encode("cp1252") + "é é".encode("utf-8")
    text, codec, _ = decode_html(body, "text/html; charset=windows-1252")
    assert codec == "cp1252" and _GERMAN.strip() in text


def _bodies():
    """(body, Content-Type) pairs reaching every branch of decode_html."""
    text = "<html><head>{meta}</head><body><p>Grüße aus Köln – 東京 ✓</p></body></html>"
    plain = "<html><body><p>plain ascii page</p></body></html>"
    yield text.format(meta="").encode("utf-8"), "text/html; charset=utf-8"            # header
    yield text.format(meta='<meta charset="utf-8">').encode("utf-8"), None           # meta
    yield text.format(meta='<meta charset="utf-16">').encode("utf-8"), None          # meta, UTF-16 means UTF-8
    yield text.format(meta="").encode("utf-8"), None                                  # utf8-valid
    yield text.format(meta="").encode("utf-8"), "text/html; charset=iso-8859-1"       # single-byte over UTF-8
    yield b"\xef\xbb\xbf" + text.format(meta="").encode("utf-8"), None                 # bom utf-8
    yield text.format(meta="").encode("utf-16"), None                                 # bom utf-16
    yield plain.encode("ascii"), None                                                 # ascii
    yield plain.encode("ascii"), "text/html; charset=us-ascii"                        # header, windows-1252
    yield ("<p>" + "schön " * 20 + "</p>").encode("utf-8") + b"\xe9t\xe9", None       # utf8-mostly (replaced)
    yield ("<p>" + "Straße, Größe, Übung. " * 30 + "</p>").encode("cp1252"), None      # detected
    yield text.format(meta="").encode("utf-8") + b"\xff", "text/html; charset=utf-8"  # bad UTF-8 under a header


def test_utf8_of_is_the_text_encoded_or_none():
    seen = set()
    for body, content_type in _bodies():
        try:
            text, codec, source = decode_html(body, content_type)
        except UndecodableError:
            continue   # dead-lettered: never extracted
        utf8 = utf8_of(body, codec, source)
        seen.add((source, utf8 is not None))
        if utf8 is not None:
            assert utf8 == text.encode("utf-8"), (codec, source)
    # the one-to-one decodes give the bytes; replacement and other codecs do not
    assert {("header", True), ("meta", True), ("utf8-valid", True), ("bom", True), ("ascii", True),
            ("utf8-mostly", False), ("bom", False)} <= seen
