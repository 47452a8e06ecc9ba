"""consent_html skips pages whose <meta name> tags cannot matter, and the resiliparse child reads
UTF-8 bytes: both give exactly what the slower path gave."""
from __future__ import annotations

import random

import pytest

from filters.consent import _default_agents, extract_meta_consent
from pipelines.html_text import ExtractionError, Extractor, consent_html, extract_now

BODY = "<p>" + "main text " * 200 + "</p>"

# name values: kept by extract_meta_consent, ignored by it, and ones a parser may read otherwise
NAMES = [
    "robots", "ROBOTS", " robots ", "\nrobots\t", "Robots", "tdm-reservation", "TDM-Reservation",
    "CCBot", "ccbot", "GPTBot", "Google-Extended", "meta-externalagent", "Ai2Bot-Dolma", "googlebot",
    "bingbot", "foo-ai", "x-extended", "useragent", "webcrawler", "myspider", "robots.txt",
    "description", "viewport", "generator", "twitter:card", "robotsx", "xrobots", "", " ",
    "&#114;obots", "rob&#x6f;ts", "robots&amp;", "&amp;robots", "robots\f", "\frobots", "robo\x00ts",
    "robots\xa0", "\xa0robots", "goo\u212abot", "spi\u017fder", "ro\u0130bots", "ro bots", "foo bot",
    "foo\xa0bot", "foo\fbot", "foo\tbot", "robots/", "tdm-reservation ", "ai2bot-dolma", "a-ai", "x&gt;bot",
]
QUOTES = ['"{}"', "'{}'", "{}"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\f", "\xa0", "\x0b"]
OPENERS = ["<meta", "<META", "<Meta", "<meta/", "<meta\f", "<meta\t", "<metadata", "<meta\x00"]
CLOSERS = [">", "/>", " />", " / >", "", '"', "'>"]
WRAPS = ["{}", "<!-- {} -->", "<!-- {}", "<script>{}</script>", "<script>{}", "<title>{}</title>",
         "<textarea>{}</textarea>", "<noscript>{}</noscript>", "<style>{}</style>", '<div title="{}">x</div>',
         '<div title="{}', "<![CDATA[{}]]>", "<?x {} ?>", "<template>{}</template>", "<svg>{}</svg>",
         '<meta name="description" content="{}">', "<meta name='viewport' content='{}'>",
         '<meta content="{}" name="robots">']


def _tag(rng: random.Random) -> str:
    attrs = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        key = rng.choice(["name", "name", "NAME", "Name", "nam\u0435"])
        attrs.append(key + rng.choice(["=", " = ", "\f=", "="]) + rng.choice(QUOTES).format(rng.choice(NAMES)))
    attrs.append("content=" + rng.choice(QUOTES).format(rng.choice(["noai", "noindex, nofollow", "1", "a>b", "x\ny", ""])))
    if rng.random() < 0.3:
        attrs.append(rng.choice(["charset=utf-8", "property='og:x'", "itemprop", "data-x=1", 'a=b"c', "x@y=1"]))
    rng.shuffle(attrs)
    return rng.choice(OPENERS) + "".join(rng.choice(SPACES) + a for a in attrs) + rng.choice(CLOSERS)


def _page(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 6)):
        piece = _tag(rng)
        if rng.random() < 0.4:
            piece = rng.choice(WRAPS).format(piece)
        parts.append(piece)
        if rng.random() < 0.3:
            parts.append(rng.choice(["<p>text</p>", "</head><body>", BODY, "<head>", "</title>", "-->", '"', "'"]))
    head = rng.choice(["", "<html><head>", "<!doctype html><html><head><title>t</title>"])
    return head + "".join(parts) + rng.choice(["", BODY, "</body></html>"])


def test_generated_hostile_heads_give_the_same_consent():
    rng = random.Random(13)
    kept_pages = cut_pages = 0
    for _ in range(4000):
        html = _page(rng)
        part = consent_html(html)
        assert html.startswith(part)
        whole = extract_meta_consent(html)
        assert extract_meta_consent(part) == whole, repr(html)
        kept_pages += any(whole.values())
        cut_pages += part == ""
    # the generator reaches both sides: pages with kept tags and pages that need no parse at all
    assert kept_pages > 500 and cut_pages > 100


@pytest.mark.parametrize("html", [
    '<meta name="description" content="<meta name=robots content=noai>">' + BODY,
    '<meta name="description" content="<meta name=\'robots\' content=\'noai\'>' + BODY,
    '<meta name="a" name="robots" content="noai">' + BODY,
    '<meta name="robots" name="a" content="noai">' + BODY,
    '<meta name="&#114;obots" content="noai">' + BODY,
    '<meta name="foo&#x62;ot" content="noai">' + BODY,
    '<meta name="foo\fbot" content="noai">' + BODY,
    '<meta name=foo\xa0bot content="noai">' + BODY,
    '<meta\fname="robots" content="noai">' + BODY,
    '<meta name="goo\u212abot" content="noai">' + BODY,
])
def test_names_a_parser_may_read_otherwise_are_kept(html):
    assert consent_html(html) != ""
    assert extract_meta_consent(consent_html(html)) == extract_meta_consent(html)


def test_ignored_names_are_not_parsed():
    head = '<head><meta name="viewport" content="w"><meta name="description" content="d"></head>'
    assert consent_html(head + BODY) == ""
    for name in ["robots", "Robots", "tdm-reservation", "googlebot", "x-ai", "foo-extended", "useragent",
                 *_default_agents()]:
        page = f'{head}<meta name="{name}" content="noai"><meta name="keywords" content="k">{BODY}'
        part = consent_html(page)
        assert part.endswith('content="noai">'), name
        assert extract_meta_consent(part) == extract_meta_consent(page) != extract_meta_consent("")


def realweb_pages():
    """(html, url) of every decodable realweb response, as the extract stage decodes it."""
    from tests.conftest import require_shared
    from pipelines import charset, warc as warc_io

    path = str(require_shared("realweb/realweb.warc.gz"))
    records = warc_io.iter_records(warc_io.local_opener(path), path, want_body=lambda r: r.rec_type == "response")
    for rec in records:
        if isinstance(rec, warc_io.RawRecord) and rec.body:
            try:
                yield charset.decode_html(rec.body, rec.header("Content-Type"))[0], rec.target_uri
            except charset.UndecodableError:
                pass


def test_every_realweb_page_gives_the_same_consent():
    checked = skipped = 0
    for html, url in realweb_pages():
        part = consent_html(html)
        assert extract_meta_consent(part) == extract_meta_consent(html), url
        checked += 1
        skipped += part == ""
    assert checked >= 900 and skipped >= 100


# --- the child process gets the page as UTF-8 bytes ------------------------------------------------

ODD_PAGES = [
    "",
    "<p>" + "plain ascii text " * 40 + "</p>",
    "<title>Caf\u00e9 \U0001f600</title><p>" + "gr\u00fc\u00dfe aus K\u00f6ln, \u65e5\u672c\u8a9e, \U00010348 " * 30 + "</p>",
    "<p>nul \x00 and controls \x01\x7f\x85 and U+FFFE \ufffe U+FFFF \uffff and U+FEFF \ufeff</p>" * 20,
    "<p>crlf\r\nlines\rand\nmore</p>" * 30,
    "<title>lone surrogate \ud800</title><p>" + "text \udcff " * 50 + "</p>",  # no UTF-8 form
    "\udc80<html><body><p>surrogateescape-like byte at the start</p></body></html>",
    "<title>" + "\u00e9" * 250_000 + "</title>",  # title past the 200k-character scan
]


def _outcome(extractor, html, url="https://example.org/p"):
    try:
        result = extractor.extract(html, url)
        return "ok", result.text, result.title
    except Exception as exc:  # noqa: BLE001 - the error text is part of what must not change
        return "error", type(exc).__name__, str(exc)


@pytest.mark.parametrize("name", ["resiliparse", "trafilatura"])
def test_the_child_gives_what_the_inline_extractor_gives(name):
    with Extractor({}, 0, name) as inline, Extractor({}, 30, name) as isolated:
        for html in ODD_PAGES:
            assert _outcome(isolated, html) == _outcome(inline, html), repr(html[:60])
        assert isolated.restarts == 0


def test_the_page_travels_as_utf8_bytes_unless_it_has_none(monkeypatch):
    from pipelines import html_text

    sent = []
    real = html_text._send_request
    monkeypatch.setattr(html_text, "_send_request",
                        lambda fh, message, payload=b"": (sent.append((message, payload)), real(fh, message, payload)))
    page = "<p>caf\u00e9 " + "x" * 300 + "</p>"
    with Extractor({}, 30, "resiliparse") as ex:
        ex.extract(page, "u1")
        with pytest.raises(ExtractionError, match="neither string nor HTMLTree"):
            ex.extract("<p>\ud800</p>", "u2")  # resiliparse refuses it, as it did when pickled
    assert sent[0] == ((None, "u1"), page.encode("utf-8"))
    assert sent[1] == (("<p>\ud800</p>", "u2"), b"")
    assert sent[2] == (None, b"")  # close


def test_a_cut_request_is_end_of_input():
    import io

    from pipelines import html_text

    buf = io.BytesIO()
    html_text._send_request(buf, (None, "u"), b"abcdef")
    whole = buf.getvalue()
    assert html_text._recv_request(io.BytesIO(whole)) == ((None, "u"), b"abcdef")
    for cut in (0, 5, 16, len(whole) - 1):
        with pytest.raises(EOFError):
            html_text._recv_request(io.BytesIO(whole[:cut]))


def test_realweb_through_the_child_is_unchanged():
    checked = 0
    with Extractor({}, 30, "resiliparse") as isolated, Extractor({}, 30, "trafilatura") as isolated_t:
        for html, url in realweb_pages():
            try:
                want = extract_now(html, url, {}, "resiliparse")
            except Exception:  # noqa: BLE001 - the child must fail on it too
                with pytest.raises(ExtractionError):
                    isolated.extract(html, url)
                continue
            assert isolated.extract(html, url) == want, url
            if checked % 40 == 0:  # trafilatura is slow: every 40th page
                assert isolated_t.extract(html, url) == extract_now(html, url, {}, "trafilatura"), url
            checked += 1
    assert checked >= 900
