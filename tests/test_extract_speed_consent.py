"""The extract stage parses only the head of a page for its consent <meta> tags: same result."""
from __future__ import annotations

import pytest

from filters.consent import extract_meta_consent
from pipelines.html_text import consent_html

BODY = "<p>" + "main text " * 500 + "</p>"

CASES = {
    "robots in head": f'<html><head><meta charset="utf-8"><meta name="robots" content="noai"></head><body>{BODY}</body></html>',
    "crawler meta in body": f'<html><head><title>t</title></head><body>{BODY}<meta name="CCBot" content="nofollow"></body>',
    "upper case, unquoted": f"<HTML><HEAD><META NAME=robots CONTENT=noindex></HEAD><BODY>{BODY}</BODY></HTML>",
    "'>' inside a value": f'<head><meta name="tdm-reservation" content="1 > 0"></head><body>{BODY}</body>',
    "stray quote": f'<head><meta a=b"c name="robots" content="x>y"></head><body>{BODY}</body>',
    "unterminated tag": f'<head><meta name="robots" content="noai"',
    "in a comment": f"<head><!-- <meta name=robots content=noai> --></head><body>{BODY}</body>",
    "in a script": f"<head><script>var s = '<meta name=robots content=noai>';</script></head><body>{BODY}</body>",
    "in an attribute": f'<body><div title="<meta name=robots content=noai>">{BODY}</div></body>',
    "no name, body microdata": f'<head><meta name="robots" content="all"></head><body>{BODY}<meta itemprop="x" content="y"></body>',
    "no meta": f"<html><body>{BODY}</body></html>",
    "metadata tag": f"<metadata name=robots content=noai>{BODY}",
    "self-closing, several": f'<head><meta name="robots" content="a"/><meta name=googlebot content=b /></head>{BODY}',
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_consent_as_the_whole_page(name):
    html = CASES[name]
    assert extract_meta_consent(consent_html(html)) == extract_meta_consent(html)


def test_the_body_is_not_parsed_when_the_tags_are_in_the_head():
    html = CASES["robots in head"]
    part = consent_html(html)
    assert part.endswith('<meta name="robots" content="noai">') and "main text" not in part
    assert consent_html(CASES["no meta"]) == ""
    assert consent_html(CASES["no name, body microdata"]).endswith('content="all">')


def test_a_tag_the_scan_cannot_read_sends_the_whole_page():
    assert consent_html(CASES["stray quote"]) == CASES["stray quote"]
    assert consent_html(CASES["unterminated tag"]) == CASES["unterminated tag"]


def test_realweb_pages_give_the_same_consent():
    from tests.conftest import require_shared
    from pipelines.charset import UndecodableError, decode_html
    from pipelines.warc import RawRecord, iter_records, local_opener

    warc = str(require_shared("realweb/realweb.warc.gz"))
    checked = with_consent = 0
    for rec in iter_records(local_opener(warc), warc, want_body=lambda r: r.rec_type == "response"):
        if not isinstance(rec, RawRecord) or not rec.body or b"<" not in rec.body[:2000]:
            continue
        try:
            html = decode_html(rec.body, rec.header("Content-Type"))[0]
        except UndecodableError:
            continue
        whole = extract_meta_consent(html)
        assert extract_meta_consent(consent_html(html)) == whole, rec.target_uri
        checked += 1
        with_consent += any(whole.values())
    assert checked >= 900 and with_consent >= 100
